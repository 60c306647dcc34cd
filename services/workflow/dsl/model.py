"""A definition after parsing and checking: tasks with their paths, compiled expressions and policies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.workflow.dsl.expressions import Expression, Template

FLOW_DIRECTIVES = frozenset({"continue", "exit", "end"})
"""`then` values that are not task names: next task, leave the enclosing list, end the workflow."""

TASK_KINDS = ("call", "do", "set", "switch", "for", "fork", "try", "wait", "listen", "emit", "raise", "run")
"""The task kinds this service runs, in the DSL's own names (docs/workflow.md documents each)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a `try` task retries: exponential or constant backoff with jitter, bounded by attempts and time."""

    delay_seconds: float
    exponential: bool
    max_attempts: int
    """Attempts in all, the first included."""
    max_seconds: float | None
    jitter_from: float
    jitter_to: float

    def backoff(self, attempt: int) -> float:
        """The delay before attempt `attempt + 1` (without jitter)."""
        return self.delay_seconds * (2 ** (attempt - 1) if self.exponential else 1)


@dataclass(frozen=True)
class Catch:
    """A `try` task's catch: which errors, under which name, what to run, how to retry."""

    error_type: str | None
    error_status: int | None
    as_name: str
    when: Expression | None
    except_when: Expression | None
    retry: RetryPolicy | None
    do: tuple[Task, ...]


@dataclass(frozen=True)
class SwitchCase:
    """One `switch` case: a condition (none for the default case) and where to go."""

    name: str
    when: Expression | None
    then: str


@dataclass(frozen=True)
class Task:
    """One task of a definition, at its path (`do[2].chargeCard`)."""

    name: str
    path: str
    kind: str
    when: Expression | None = None
    """The task's `if`: skipped when false."""
    then: str = "continue"
    input_from: Template | None = None
    output_as: Template | None = None
    export_as: Template | None = None
    compensate: tuple[Task, ...] = ()
    """The saga extension: tasks that undo this one, run if the workflow fails or is cancelled after it succeeded."""
    template: Template | None = None
    """call: the request (`with`); set: the values; emit: the event's data; raise: the error."""
    method: str = ""
    """call: the mesh method's full name (`protomesh.agent.v1.AgentService/ExecuteAgent`)."""
    do: tuple[Task, ...] = ()
    """do, for and try bodies."""
    branches: tuple[Task, ...] = ()
    compete: bool = False
    catch: Catch | None = None
    cases: tuple[SwitchCase, ...] = ()
    for_each: str = "item"
    for_at: str = "index"
    for_in: Expression | None = None
    for_while: Expression | None = None
    seconds: float = 0.0
    """wait: the duration; listen: the timeout (0: none)."""
    event_type: str = ""
    """listen and emit: the event or signal type."""
    workflow: str = ""
    """run: the name of the child workflow definition (its latest revision runs, `template` its input)."""
    event_filter: Template | None = None
    """listen: other `with` attributes a signal's data must match (expressions evaluated when it listens)."""

    @property
    def compensable(self) -> bool:
        return bool(self.compensate)


@dataclass(frozen=True)
class Workflow:
    """A checked definition: its document header and its top-level tasks."""

    name: str
    namespace: str
    version: str
    summary: str
    do: tuple[Task, ...]
    output_as: Template | None
    by_path: Mapping[str, Task]
    """Every task by its path, nested ones (and compensations) included."""

    @property
    def task_paths(self) -> list[str]:
        return list(self.by_path)
