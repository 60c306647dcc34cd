"""Which events a subscription matches: the domain event types in the contracts, type patterns, subject
globs, and the email subject template."""

from __future__ import annotations

import fnmatch
import functools
import importlib
import json
import pkgutil
import re
from collections.abc import Mapping
from typing import Any

import protomesh
from chassis.contracts import mesh_grpc_services

OWN_PACKAGE = "protomesh.notification.v1"
"""Our own events (if any are ever added) never become notifications: that could loop."""
WILDCARD = "*"


@functools.cache
def domain_event_types() -> tuple[str, ...]:
    """Full names of every domain event: the top-level messages of each `protomesh.*` events.proto.

    Read from the generated modules, so an event type added to any contract is covered by the
    consumer (and can be subscribed to) without a code change here.
    """
    mesh_grpc_services()  # imports every generated module
    found: list[str] = []
    for info in pkgutil.walk_packages(protomesh.__path__, prefix="protomesh."):
        if not info.name.endswith(".events_pb2"):
            continue
        file = importlib.import_module(info.name).DESCRIPTOR
        if file.name.endswith("/events.proto") and file.package != OWN_PACKAGE:
            found.extend(message.full_name for message in file.message_types_by_name.values())
    return tuple(sorted(found))


def candidate_patterns(event_type: str) -> list[str]:
    """Every subscription pattern that matches event_type: itself, '*', and each dotted prefix + '.*'.

    protomesh.agent.v1.ExecutionFailed -> [it, '*', 'protomesh.*', 'protomesh.agent.*', 'protomesh.agent.v1.*'];
    matching is then an array overlap in SQL, with the one definition of a match here.
    """
    parts = event_type.split(".")
    return [event_type, WILDCARD, *(".".join(parts[:i]) + ".*" for i in range(1, len(parts)))]


def type_matches(pattern: str, event_type: str) -> bool:
    """Whether a subscription pattern matches an event type."""
    return pattern in candidate_patterns(event_type)


def pattern_problem(pattern: str, known: tuple[str, ...] | None = None) -> str | None:
    """Why a pattern cannot be subscribed to (it matches no domain event), or None.

    Its form (full name or trailing wildcard) is the contract's rule (event_type_pattern), checked first.
    """
    known = domain_event_types() if known is None else known
    if any(type_matches(pattern, event_type) for event_type in known):
        return None
    if pattern.endswith(".*"):
        return f"{pattern!r} matches no domain event type in the contracts"
    return f"unknown event type {pattern!r}; see GetInfo.event_types"


def subject_matches(subject_filter: str, subject: str) -> bool:
    """Whether an event subject matches a subscription's glob ('' matches everything)."""
    return not subject_filter or fnmatch.fnmatchcase(subject, subject_filter)


# --- the email subject template ------------------------------------------------------------------

PLACEHOLDERS = ("type", "event", "subject", "id", "time", "source", "subscription")
"""Names a template may use besides data.<field>: what EventView.placeholders() fills in. The contract's
subject_template rule (notification/v1/rules.proto) accepts the same names; tests/test_matching.py keeps them equal."""
DEFAULT_SUBJECT_TEMPLATE = "[protomesh] {event} {subject}"
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def _lookup(data: Any, path: list[str]) -> str:
    for key in path:
        if not isinstance(data, Mapping) or key not in data:
            return ""
        data = data[key]
    return data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))


def render_template(template: str, values: Mapping[str, str], data: Mapping[str, Any]) -> str:
    """The template with placeholders filled (a missing data field renders empty); checked beforehand."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        if name is None:
            return token
        if name.startswith("data."):
            return _lookup(data, name.split(".")[1:])
        return values.get(name, "")

    return _TOKEN.sub(replace, template)
