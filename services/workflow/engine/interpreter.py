"""The interpreter: walks a checked definition, checkpointing every task, replaying what already completed.

A resumed execution runs from the top again; a task whose checkpoint says SUCCEEDED is not run but
answers with its recorded output (and restores the context recorded after it), a FAILED one raises its
recorded error, so the walk reaches the first unfinished task with the same data as before the crash.
Pure tasks (set, switch) are deterministic given their input; every effect (a call, a timer, a signal,
an emitted event) is behind a checkpoint.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import psycopg
from google.protobuf import struct_pb2
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from chassis.events import outbox
from protomesh.workflow.v1 import events_pb2
from services.workflow.dsl.expressions import ExpressionError
from services.workflow.dsl.model import Task, Workflow
from services.workflow.engine.calls import MeshCaller
from services.workflow.engine.checkpoints import Checkpoints, InTransaction, Step
from services.workflow.engine.clock import Clock
from services.workflow.engine.outcomes import ERRORS, Cancelled, LeaseLost, Suspend, WorkflowError

_tracer = trace.get_tracer(__name__)
_ITERATION = re.compile(r"#\d+")
SOURCE = "workflow"


def static_path(runtime_path: str) -> str:
    """A runtime path without its loop iterations (`do[0].each#3.do[1].pay` → `do[0].each.do[1].pay`)."""
    return _ITERATION.sub("", runtime_path)


def idempotency_key(execution_id: uuid.UUID, path: str, attempt_key: str) -> str:
    """The key a call carries: the same for a repeat of this attempt after a crash, new for a retry."""
    digest = hashlib.sha256(f"{execution_id}|{path}|{attempt_key}".encode()).hexdigest()
    return f"wf-{digest[:48]}"


@dataclass(frozen=True)
class Scope:
    """Where a task runs: its expression variables, how its static path maps to a runtime one, its attempt."""

    variables: Mapping[str, Any]
    marks: tuple[tuple[str, str], ...] = ()
    attempts: tuple[int, ...] = ()
    compensation: bool = False

    def runtime(self, path: str) -> str:
        for static, runtime in self.marks:
            if path.startswith(static):
                path = runtime + path[len(static):]
        return path

    @property
    def attempt_key(self) -> str:
        return ".".join(map(str, self.attempts)) or "1"

    @property
    def attempt(self) -> int:
        return self.attempts[-1] if self.attempts else 1

    def with_variables(self, **values: Any) -> Scope:
        return replace(self, variables={**self.variables, **values})


@dataclass
class Interpreter:
    """Runs one execution's tasks under this replica's lease."""

    execution_id: uuid.UUID
    organization_id: str
    workflow: Workflow
    checkpoints: Checkpoints
    caller: MeshCaller
    clock: Clock
    traceparent: str
    context: Any = field(default_factory=dict)

    # --- lists and flow -------------------------------------------------------------------------

    async def run_list(self, tasks: Sequence[Task], data: Any, scope: Scope) -> tuple[Any, bool]:
        """Run a task list from its first task, following `then`; (its last output, whether the workflow ends)."""
        index = {t.name: i for i, t in enumerate(tasks)}
        position = 0
        while position < len(tasks):
            task = tasks[position]
            data, then, ended = await self.run_task(task, data, scope)
            if ended or then == "end":
                return data, True
            if then == "exit":
                return data, False
            position = position + 1 if then == "continue" else index[then]
        return data, False

    def _vars(self, scope: Scope) -> dict[str, Any]:
        """The scope's variables with the context as it stands now (tasks before this one may have exported)."""
        return {**scope.variables, "context": self.context}

    def _next(self, task: Task, data: Any, scope: Scope) -> str:
        """Where the flow goes after `task`: its `then`, or for a switch the first matching case's."""
        if task.kind == "switch":
            try:
                for case in task.cases:
                    if case.when is None or _truthy(case.when.evaluate(data, self._vars(scope))):
                        return case.then
            except ExpressionError as exc:
                raise WorkflowError(ERRORS + "expression", 400, "expression failed", str(exc), task.path) from None
        return task.then

    # --- one task -------------------------------------------------------------------------------

    async def run_task(self, task: Task, data: Any, scope: Scope) -> tuple[Any, str, bool]:
        """(output, where to go next, whether the workflow ends) of one task, checkpointed."""
        try:
            if task.when is not None and not _truthy(task.when.evaluate(data, self._vars(scope))):
                return data, "continue", False
            path = scope.runtime(task.path)
            step = self.checkpoints.steps.get((path, scope.attempt_key))
            if step is not None and step.status == "SUCCEEDED":
                self.context = step.context
                return step.output, self._next(task, step.input, scope), step.ended
            if step is not None and step.status == "FAILED":
                raise WorkflowError.from_json(step.error or {})
            task_input = task.input_from.render(data, self._vars(scope)) if task.input_from else data
        except ExpressionError as exc:
            raise WorkflowError(ERRORS + "expression", 400, "expression failed", str(exc), task.path) from None
        if step is None:
            wake_at = self.clock.now() + timedelta(seconds=task.seconds) if task.kind in ("wait", "listen") \
                and task.seconds else None
            # Only a timer's start is written before the task runs (its due time must survive this replica);
            # the others' start is written with their outcome, one transaction a task. A call repeated after a
            # crash needs no start record: its idempotency key derives from the path and attempt alone.
            step, cancel = await self.checkpoints.begin(
                path, scope.attempt_key, scope.attempt, task.kind, task_input, compensation=scope.compensation,
                compensable=task.compensable and not scope.compensation, started_at=self.clock.now(), wake_at=wake_at,
                store=wake_at is not None)
            if cancel and not scope.compensation:
                raise Cancelled
        with self._span(task, path, scope):
            try:
                raw, ended, also = await self._execute(task, step, task_input, scope)
                output = task.output_as.render(raw, self._vars(scope)) if task.output_as else raw
                if task.export_as:
                    self.context = task.export_as.render(output, self._vars(scope))
                then = self._next(task, task_input, scope)
            except ExpressionError as exc:
                error = WorkflowError(ERRORS + "expression", 400, "expression failed", str(exc), path)
                await self.checkpoints.fail(step, error.as_json(), self.clock.now())
                raise error from None
            except WorkflowError as error:
                error.instance = error.instance or path
                await self.checkpoints.fail(step, error.as_json(), self.clock.now())
                raise
        cancel = await self.checkpoints.succeed(step, output, self.context, self.clock.now(), ended=ended, also=also)
        if cancel and not scope.compensation and not ended:
            raise Cancelled  # seen at this task's checkpoint: the next task does not start
        return output, then, ended

    def _span(self, task: Task, path: str, scope: Scope) -> Any:
        parent = TraceContextTextMapPropagator().extract({"traceparent": self.traceparent}) if self.traceparent \
            else None
        return _tracer.start_as_current_span(
            f"workflow {task.kind} {path}", context=parent,
            attributes={"workflow.execution_id": str(self.execution_id), "workflow.task.path": path,
                        "workflow.task.kind": task.kind, "workflow.task.attempt": scope.attempt})

    async def _execute(self, task: Task, step: Step, data: Any, scope: Scope) -> tuple[Any, bool, list[InTransaction]]:
        """(raw output, whether the workflow ends, writes to make with the success checkpoint)."""
        variables = self._vars(scope)
        kind = task.kind
        if kind == "call":
            assert task.template is not None  # noqa: S101 the parser sets it for every call task
            arguments = task.template.render(data, variables)
            key = idempotency_key(self.execution_id, step.path, step.attempt_key)
            return await self.caller.call(task.method, arguments, key, step.path), False, []
        if kind == "set":
            assert task.template is not None  # noqa: S101 the parser sets it for every set task
            return task.template.render(data, variables), False, []
        if kind == "switch":
            return data, False, []
        if kind == "do":
            output, ended = await self.run_list(task.do, data, scope)
            return output, ended, []
        if kind == "for":
            return (*await self._for(task, step, data, scope), [])
        if kind == "fork":
            return await self._fork(task, data, scope), False, []
        if kind == "try":
            return (*await self._try(task, step, data, scope), [])
        if kind == "wait":
            self._await_timer(step, f"timer until {step.wake_at}")
            return data, False, []
        if kind == "listen":
            wanted = task.event_filter.render(data, variables) if task.event_filter else {}
            return await self._listen(task, step, wanted)
        if kind == "emit":
            return self._emit(task, step, data, variables)
        if kind == "run":
            return await self._child(task, step, data, variables)
        if kind == "raise":
            assert task.template is not None  # noqa: S101 the parser sets it for every raise task
            error = task.template.render(data, variables)
            raise WorkflowError(str(error.get("type", ERRORS + "runtime")), int(error.get("status", 500)),
                                str(error.get("title", "raised")), str(error.get("detail", "")), step.path)
        raise WorkflowError(ERRORS + "configuration", 400, f"unsupported task kind {kind}", instance=step.path)

    def _await_timer(self, step: Step, waiting: str, signal_type: str | None = None) -> None:
        if step.wake_at is not None and self.clock.now() < step.wake_at:
            raise Suspend(step.wake_at, waiting, signal_type)

    async def timer(self, path: str, scope: Scope, seconds: float, kind: str = "backoff") -> None:
        """A durable timer as its own step (retry backoffs): suspends until due, survives restarts."""
        step = self.checkpoints.steps.get((path, scope.attempt_key))
        if step is not None and step.status == "SUCCEEDED":
            return
        if step is None:
            step, _ = await self.checkpoints.begin(
                path, scope.attempt_key, scope.attempt, kind, {"seconds": seconds}, compensation=scope.compensation,
                compensable=False, started_at=self.clock.now(), wake_at=self.clock.now() + timedelta(seconds=seconds))
        self._await_timer(step, f"{kind} until {step.wake_at}")
        await self.checkpoints.succeed(step, {"seconds": seconds}, self.context, self.clock.now())

    # --- composite kinds ------------------------------------------------------------------------

    async def _for(self, task: Task, step: Step, data: Any, scope: Scope) -> tuple[Any, bool]:
        assert task.for_in is not None  # noqa: S101 the parser sets it for every for task
        items = task.for_in.evaluate(data, self._vars(scope))
        if not isinstance(items, list):
            raise WorkflowError(ERRORS + "expression", 400, "for.in is not a list", f"got {type(items).__name__}",
                                step.path)
        output = data
        for position, item in enumerate(items):
            inner = replace(scope.with_variables(**{task.for_each: item, task.for_at: position}),
                            marks=(*scope.marks, (f"{step.path}.", f"{step.path}#{position}.")))
            if task.for_while is not None and not _truthy(task.for_while.evaluate(output, self._vars(inner))):
                break
            output, ended = await self.run_list(task.do, output, inner)
            if ended:
                return output, True
        return output, False

    async def _fork(self, task: Task, data: Any, scope: Scope) -> Any:
        runs = [asyncio.ensure_future(self.run_task(branch, data, scope)) for branch in task.branches]
        if task.compete:
            pending = set(runs)
            errors: list[BaseException] = []
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for finished in done:
                    if finished.exception() is None:
                        for other in pending:
                            other.cancel()
                        await asyncio.gather(*pending, return_exceptions=True)
                        return finished.result()[0]
                    errors.append(finished.exception())  # type: ignore[arg-type]
            raise _most_urgent(errors)
        results = await asyncio.gather(*runs, return_exceptions=True)
        problems = [r for r in results if isinstance(r, BaseException)]
        if problems:
            raise _most_urgent(problems)
        return [r[0] for r in results]  # type: ignore[index]

    async def _try(self, task: Task, step: Step, data: Any, scope: Scope) -> tuple[Any, bool]:
        catch = task.catch
        attempt = 1
        while True:
            inner = replace(scope, attempts=(*scope.attempts, attempt))
            try:
                return await self.run_list(task.do, data, inner)
            except WorkflowError as error:
                if catch is None or not self._catches(catch, error, scope):
                    raise
                retry = catch.retry
                elapsed = (self.clock.now() - step.started_at).total_seconds()
                in_time = retry is not None and (retry.max_seconds is None or elapsed < retry.max_seconds)
                if retry and attempt < retry.max_attempts and in_time:
                    delay = retry.backoff(attempt) + random.uniform(retry.jitter_from, retry.jitter_to)  # noqa: S311 jitter, not a secret
                    await self.timer(f"{step.path}.retry", inner, delay)
                    attempt += 1
                    continue
                if catch.do:
                    handled = scope.with_variables(**{catch.as_name: error.as_json()})
                    return await self.run_list(catch.do, data, handled)
                return data, False

    def _catches(self, catch: Any, error: WorkflowError, scope: Scope) -> bool:
        if catch.error_type is not None and catch.error_type not in (error.type, error.type.rsplit("/", 1)[-1]):
            return False
        if catch.error_status is not None and catch.error_status != error.status:
            return False
        variables = {**scope.variables, catch.as_name: error.as_json(), "context": self.context}
        if catch.when is not None and not _truthy(catch.when.evaluate(error.as_json(), variables)):
            return False
        return not (catch.except_when is not None and _truthy(catch.except_when.evaluate(error.as_json(), variables)))

    # --- events and signals ---------------------------------------------------------------------

    async def _listen(self, task: Task, step: Step, wanted: Any) -> tuple[Any, bool, list[InTransaction]]:
        refused: list[uuid.UUID] = []
        for signal_id, signal_data in await self.checkpoints.open_signals(task.event_type):
            if _matches(wanted, signal_data):
                await self.checkpoints.ignore_signals(refused, step.path)

                async def consume(conn: psycopg.AsyncConnection[Any], signal_id: uuid.UUID = signal_id) -> None:
                    cur = await conn.execute(
                        "UPDATE signals SET consumed_by = %s WHERE id = %s AND consumed_by IS NULL",
                                             (step.path, signal_id))
                    if cur.rowcount != 1:
                        raise LeaseLost  # another run consumed it: this one is stale
                return signal_data, False, [consume]
            refused.append(signal_id)
        await self.checkpoints.ignore_signals(refused, step.path)
        if step.wake_at is not None and self.clock.now() >= step.wake_at:
            raise WorkflowError(ERRORS + "timeout", 408, f"no {task.event_type} before the listen's timeout",
                                instance=step.path)
        raise Suspend(step.wake_at, f"signal {task.event_type}", task.event_type)

    async def _child(self, task: Task, step: Step, data: Any,
                     variables: Mapping[str, Any]) -> tuple[Any, bool, list[InTransaction]]:
        """A child workflow: started once (its id derives from this task attempt), then waited for; its end
        arrives as a signal the child's finish writes for its parent."""
        child_id = uuid.uuid5(self.execution_id, f"child|{step.path}|{step.attempt_key}")
        signal_type = f"child:{child_id}"
        for signal_id, result in await self.checkpoints.open_signals(signal_type):
            async def consume(conn: psycopg.AsyncConnection[Any], signal_id: uuid.UUID = signal_id) -> None:
                await conn.execute("UPDATE signals SET consumed_by = %s WHERE id = %s", (step.path, signal_id))
            if result.get("status") != "SUCCEEDED":
                error = result.get("error") or {}
                raise WorkflowError(str(error.get("type", ERRORS + "runtime")), int(error.get("status", 500)),
                                    f"child workflow {task.workflow} ended {result.get('status')}",
                                    str(error.get("title", "")), step.path)
            return result.get("output"), False, [consume]
        assert task.template is not None  # noqa: S101 the parser sets it for every run task
        if not await self.checkpoints.start_child(child_id, self.organization_id, task.workflow,
                                                  task.template.render(data, variables), self.traceparent):
            raise WorkflowError(ERRORS + "configuration", 404, f"no workflow definition {task.workflow}",
                                instance=step.path)
        raise Suspend(None, f"child workflow {child_id}", signal_type)

    def _emit(self, task: Task, step: Step, data: Any,
              variables: Mapping[str, Any]) -> tuple[Any, bool, list[InTransaction]]:
        assert task.template is not None  # noqa: S101 the parser sets it for every emit task
        payload = task.template.render(data, variables)
        struct = struct_pb2.Struct()
        struct.update(payload if isinstance(payload, dict) else {"value": payload})
        event = events_pb2.WorkflowEventEmitted(execution_id=str(self.execution_id), type=task.event_type,
                                                data=struct, organization_id=self.organization_id)
        # The event's id is derived from the task attempt: the outbox row commits with the checkpoint.
        event_id = str(uuid.uuid5(self.execution_id, f"{step.path}|{step.attempt_key}"))

        async def publish(conn: psycopg.AsyncConnection[Any]) -> None:
            await outbox.add(conn, event, subject=f"workflows/executions/{self.execution_id}", source=SOURCE,
                             event_id=event_id)
        return data, False, [publish]


def _most_urgent(problems: Sequence[BaseException]) -> BaseException:
    """Of a fork's branch outcomes, the one to act on: a lost lease, a cancel, an error, then the nearest wait."""
    for kind in (LeaseLost, Cancelled, WorkflowError):
        for problem in problems:
            if isinstance(problem, kind):
                return problem
    waits = [p for p in problems if isinstance(p, Suspend)]
    if waits:
        return min(waits, key=lambda s: s.wake_at.timestamp() if s.wake_at else float("inf"))
    return problems[0]


def _matches(wanted: Mapping[str, Any], data: Any) -> bool:
    """A listen's filter (`with` other than type) against a signal's data: each key equal, `data` looked into."""
    if not isinstance(data, Mapping):
        return not wanted
    for key, value in wanted.items():
        if key == "data" and isinstance(value, Mapping):
            if not _matches(value, data):
                return False
        elif data.get(key) != value:
            return False
    return True


def _truthy(value: Any) -> bool:
    return value is not None and value is not False
