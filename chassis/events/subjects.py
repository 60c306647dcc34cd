"""Every NATS name of the event bus, derived from contract descriptors: subjects, streams, consumers.

Services never type a subject or stream name; they pass event messages (or their classes) and
these functions compute the names:

    protomesh.agent.v1.AgentRegistered  ->  subject  events.protomesh.agent.v1.agent_registered
                                            stream   EVENTS_PROTOMESH_AGENT_V1 (events.protomesh.agent.v1.>)
    dead letters                        ->  stream   DEAD_LETTERS (deadletter.>),
                                            subject  deadletter.<consumer>.<original subject>
    task kind "agent.run_execution"     ->  stream   TASKS (work queue, tasks.>),
                                            subject  tasks.agent.run_execution,
                                            consumer TASK_agent_run_execution
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf import descriptor, descriptor_pool, message, message_factory

EVENT_PREFIX = "events"
DEAD_LETTER_STREAM = "DEAD_LETTERS"
DEAD_LETTER_PREFIX = "deadletter"
TASK_STREAM = "TASKS"
TASK_PREFIX = "tasks"
TASK_PROGRESS_PREFIX = "taskprogress"
"""Core NATS (not stored): progress reports of running tasks, kept out of the TASKS work queue."""

_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_TOKEN = re.compile(r"^[a-z0-9_-]+$")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def snake(name: str) -> str:
    """CamelCase to snake_case: AgentRegistered -> agent_registered, HTTPCallMade -> http_call_made."""
    return _WORD_BOUNDARY.sub("_", name).lower()


def _descriptor(event: Any) -> descriptor.Descriptor:
    if isinstance(event, descriptor.Descriptor):
        return event
    if isinstance(event, str):
        return descriptor_pool.Default().FindMessageTypeByName(event)
    found = getattr(event, "DESCRIPTOR", None)
    if isinstance(found, descriptor.Descriptor):
        return found
    raise TypeError(f"{event!r} is not a protobuf message, message class, descriptor or full name")


def type_name(event: Any) -> str:
    """Full name of an event message, class or descriptor, e.g. protomesh.agent.v1.AgentRegistered."""
    return _descriptor(event).full_name


def package_of(event: Any) -> str:
    """The contract package an event belongs to, e.g. protomesh.agent.v1 (its file's package)."""
    desc = _descriptor(event)
    if desc.containing_type is not None:
        raise ValueError(f"{desc.full_name}: events must be top-level messages, not nested ones")
    return desc.file.package


def event_subject(event: Any) -> str:
    """The NATS subject of an event type: events.<package>.<snake name>."""
    desc = _descriptor(event)
    return f"{EVENT_PREFIX}.{package_of(desc)}.{snake(desc.name)}"


def package_stream(package: str) -> str:
    """The stream holding a package's events, e.g. EVENTS_PROTOMESH_AGENT_V1 (one per domain package)."""
    return f"{EVENT_PREFIX}_{package}".upper().replace(".", "_")


def event_stream(event: Any) -> str:
    """The stream holding an event type's messages."""
    return package_stream(package_of(event))


def event_stream_subjects(package: str) -> list[str]:
    """Subjects a package's event stream captures."""
    return [f"{EVENT_PREFIX}.{package}.>"]


def message_class(full_name: str) -> type[message.Message]:
    """The generated class of a message type in the default descriptor pool; KeyError if unknown."""
    return message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(full_name))


def check_name(name: str, what: str) -> str:
    """A consumer or worker name usable as a durable name and a subject token, or ValueError."""
    if not _NAME.match(name):
        raise ValueError(f"{what} {name!r} may only hold letters, digits, '_' and '-'")
    return name


def dead_letter_subject(consumer: str, original_subject: str) -> str:
    """Where a consumer's dead letters go: deadletter.<consumer>.<original subject>."""
    return f"{DEAD_LETTER_PREFIX}.{check_name(consumer, 'consumer')}.{original_subject}"


def dead_letter_stream_subjects() -> list[str]:
    """Subjects the dead-letter stream captures."""
    return [f"{DEAD_LETTER_PREFIX}.>"]


def task_subject(kind: str) -> str:
    """The work-queue subject of a task kind: tasks.<kind> (kind: dot-separated lower-case words)."""
    if not kind or not all(_TOKEN.match(part) for part in kind.split(".")):
        raise ValueError(f"task kind {kind!r} must be dot-separated words of a-z, 0-9, '_' or '-'")
    return f"{TASK_PREFIX}.{kind}"


def task_stream_subjects() -> list[str]:
    """Subjects the task work-queue stream captures."""
    return [f"{TASK_PREFIX}.>"]


def task_consumer(kind: str) -> str:
    """The durable consumer every worker replica of a task kind shares."""
    return "TASK_" + task_subject(kind).removeprefix(f"{TASK_PREFIX}.").replace(".", "_")


def task_progress_subject(task_id: str) -> str:
    """Core NATS subject of one task's progress reports."""
    return f"{TASK_PROGRESS_PREFIX}.{task_id}"
