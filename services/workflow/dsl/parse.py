"""Read a definition (YAML or JSON) and check it against the DSL subset and the mesh's contracts.

Every problem is collected with the path of what is wrong (`do[2].chargeCard.with.amount`) and reported
at once as INVALID_ARGUMENT, so an author fixes a definition in one round.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from chassis.errors import FieldViolation, InvalidArgument
from services.workflow.dsl import contracts
from services.workflow.dsl.durations import seconds_of
from services.workflow.dsl.expressions import Expression, ExpressionError, Template, expression_text
from services.workflow.dsl.model import FLOW_DIRECTIVES, TASK_KINDS, Catch, RetryPolicy, SwitchCase, Task, Workflow

NAME = re.compile(r"^[a-z0-9](-?[a-z0-9])*$")
"""The DSL's rule for document names (RFC 1123 labels)."""
_TASK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$")
_DOCUMENT_KEYS = frozenset({"dsl", "namespace", "name", "version", "title", "summary", "tags", "metadata"})
_TOP_KEYS = frozenset({"document", "do", "input", "output", "timeout", "metadata"})
_COMMON_KEYS = frozenset({"if", "then", "input", "output", "export", "compensate", "metadata", "timeout"})
_KIND_KEYS: Mapping[str, frozenset[str]] = {
    "call": frozenset({"call", "with"}), "do": frozenset({"do"}), "set": frozenset({"set"}),
    "switch": frozenset({"switch"}), "for": frozenset({"for", "while", "do"}), "fork": frozenset({"fork"}),
    "try": frozenset({"try", "catch"}), "wait": frozenset({"wait"}), "listen": frozenset({"listen"}),
    "emit": frozenset({"emit"}), "raise": frozenset({"raise"}), "run": frozenset({"run"}),
}
BASE_VARIABLES = ("input", "context", "workflow")
"""Variables every expression sees: the workflow's input, its context (export.as) and {id, definition}."""
MAX_TASKS = 1000


class _Checker:
    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []
        self.by_path: dict[str, Task] = {}
        self.order: list[str] = []
        """Task paths in document order (a task before the tasks inside it)."""

    def error(self, path: str, message: str) -> None:
        self.errors.append((path, message))

    def expression(self, value: Any, path: str, variables: Sequence[str]) -> Expression | None:
        text = expression_text(value)
        if text is None:
            if isinstance(value, bool):
                return Expression.compile("true" if value else "false", variables)
            self.error(path, "must be a ${ jq expression }")
            return None
        try:
            return Expression.compile(text, variables)
        except ExpressionError as exc:
            self.error(path, f"bad expression: {exc}")
            return None

    def template(self, value: Any, path: str, variables: Sequence[str]) -> Template:
        return Template.compile(value, variables, path, self.errors)

    def seconds(self, value: Any, path: str) -> float:
        try:
            return seconds_of(value)
        except ValueError as exc:
            self.error(path, str(exc))
            return 0.0

    # --- lists and tasks ------------------------------------------------------------------------

    def task_list(self, value: Any, path: str, variables: Sequence[str]) -> tuple[Task, ...]:
        if not isinstance(value, list) or not value:
            self.error(path, "must be a non-empty list of tasks ({name: task})")
            return ()
        tasks: list[Task] = []
        names: set[str] = set()
        for index, entry in enumerate(value):
            where = f"{path}[{index}]"
            if not isinstance(entry, Mapping) or len(entry) != 1:
                self.error(where, "each task is an object with one key, the task's name")
                continue
            name, body = next(iter(entry.items()))
            name = str(name)
            if not _TASK_NAME.match(name):
                self.error(where, f"task name {name!r} must be letters, digits, '_' or '-' (at most 128)")
            if name in names:
                self.error(f"{where}.{name}", f"task name {name!r} is used twice in this list")
            names.add(name)
            task = self.task(name, body, f"{where}.{name}", variables)
            if task is not None:
                tasks.append(task)
        self.flow(tasks, path)
        return tuple(tasks)

    def task(self, name: str, body: Any, path: str, variables: Sequence[str]) -> Task | None:
        if len(self.by_path) >= MAX_TASKS:
            self.error(path, f"a definition holds at most {MAX_TASKS} tasks")
            return None
        if not isinstance(body, Mapping):
            self.error(path, "a task is an object (e.g. {call: ..., with: ...})")
            return None
        kinds = [k for k in TASK_KINDS if k in body and not (k == "do" and ("for" in body))]
        if len(kinds) != 1:
            what = "none" if not kinds else " and ".join(kinds)
            self.error(path, f"a task has exactly one kind of {', '.join(TASK_KINDS)}; found {what}"
                             + ("" if kinds else f" (keys: {', '.join(map(str, body))})"))
            return None
        kind = kinds[0]
        self.order.append(path)
        for key in body:
            if key not in _COMMON_KEYS and key not in _KIND_KEYS[kind]:
                self.error(f"{path}.{key}", f"not supported on a {kind} task by this service (docs/workflow.md)")
        common = self.common(body, path, variables)
        specific = getattr(self, f"kind_{kind}")(body, path, variables)
        task = Task(name=name, path=path, kind=kind, **common, **specific)
        self.by_path[path] = task
        return task

    def common(self, body: Mapping[str, Any], path: str, variables: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if "if" in body:
            found["when"] = self.expression(body["if"], f"{path}.if", variables)
        then = body.get("then", "continue")
        if not isinstance(then, str) or not then:
            self.error(f"{path}.then", "must be continue, exit, end or the name of a task in the same list")
        else:
            found["then"] = then
        for key, attribute, inner in (("input", "input_from", "from"), ("output", "output_as", "as"),
                                      ("export", "export_as", "as")):
            if key in body:
                block = body[key]
                if not isinstance(block, Mapping) or set(block) != {inner}:
                    self.error(f"{path}.{key}", f"must be {{{inner}: <expression or object>}}")
                else:
                    found[attribute] = self.template(block[inner], f"{path}.{key}.{inner}", variables)
        if "compensate" in body:
            found["compensate"] = self.task_list(body["compensate"], f"{path}.compensate", variables)
        return found

    # --- each kind ------------------------------------------------------------------------------

    def kind_call(self, body: Mapping[str, Any], path: str, variables: Sequence[str]) -> dict[str, Any]:
        target = body.get("call")
        arguments = body.get("with", {})
        if not isinstance(target, str) or "/" not in target:
            self.error(f"{path}.call", "names a mesh gRPC method as package.Service/Method, e.g. "
                                       "protomesh.agent.v1.AgentService/ExecuteAgent (http, openapi, asyncapi "
                                       "and a2a calls are not supported)")
            return {}
        method = contracts.find_method(target)
        if method is None:
            self.error(f"{path}.call", f"no method {target} in the mesh's contracts")
        elif method.client_streaming or method.server_streaming:
            self.error(f"{path}.call", f"{target} streams; a call task calls unary methods only")
        else:
            contracts.check_request(method.input_type, arguments, f"{path}.with", self.errors)
        return {"method": target, "template": self.template(arguments, f"{path}.with", variables)}

    def kind_do(self, body: Mapping[str, Any], path: str, variables: Sequence[str]) -> dict[str, Any]:
        return {"do": self.task_list(body["do"], f"{path}.do", variables)}

    def kind_set(self, body: Mapping[str, Any], path: str, variables: Sequence[str]) -> dict[str, Any]:
        values = body["set"]
        if not isinstance(values, Mapping) and expression_text(values) is None:
            self.error(f"{path}.set", "must be an object or an expression")
        return {"template": self.template(values, f"{path}.set", variables)}

    def kind_switch(self, body: Mapping[str, Any], path: str, variables: Sequence[str]) -> dict[str, Any]:
        cases: list[SwitchCase] = []
        entries = body["switch"]
        if not isinstance(entries, list) or not entries:
            self.error(f"{path}.switch", "must be a non-empty list of cases ({name: {when, then}})")
            return {}
        for index, entry in enumerate(entries):
            where = f"{path}.switch[{index}]"
            if not isinstance(entry, Mapping) or len(entry) != 1 or not isinstance(next(iter(entry.values())), Mapping):
                self.error(where, "each case is {name: {when: ${...}, then: ...}}")
                continue
            name, case = next(iter(entry.items()))
            when = self.expression(case["when"], f"{where}.{name}.when", variables) if "when" in case else None
            then = case.get("then")
            if not isinstance(then, str) or not then:
                self.error(f"{where}.{name}.then", "must be continue, exit, end or a task name")
                continue
            cases.append(SwitchCase(str(name), when, then))
        return {"cases": tuple(cases)}

    def kind_for(self, body: Mapping[str, Any], path: str, variables: Sequence[str]) -> dict[str, Any]:
        spec = body["for"]
        if not isinstance(spec, Mapping) or "in" not in spec:
            self.error(f"{path}.for", "must be {each: item, in: ${ list }, at: index}")
            return {}
        each, at = str(spec.get("each", "item")), str(spec.get("at", "index"))
        inner = (*variables, each, at)
        found: dict[str, Any] = {"for_each": each, "for_at": at,
                                 "for_in": self.expression(spec["in"], f"{path}.for.in", variables),
                                 "do": self.task_list(body.get("do"), f"{path}.do", inner)}
        if "while" in body:
            found["for_while"] = self.expression(body["while"], f"{path}.while", inner)
        return found

    def kind_fork(self, body: Mapping[str, Any], path: str, variables: Sequence[str]) -> dict[str, Any]:
        spec = body["fork"]
        if not isinstance(spec, Mapping) or "branches" not in spec:
            self.error(f"{path}.fork", "must be {branches: [tasks], compete: false}")
            return {}
        branches = self.task_list(spec["branches"], f"{path}.fork.branches", variables)
        for branch in branches:
            if branch.then != "continue":
                self.error(f"{branch.path}.then", "a fork branch cannot jump; the branches run side by side")
        return {"branches": branches, "compete": bool(spec.get("compete", False))}

    def kind_try(self, body: Mapping[str, Any], path: str, variables: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {"do": self.task_list(body["try"], f"{path}.try", variables)}
        spec = body.get("catch")
        if not isinstance(spec, Mapping):
            self.error(f"{path}.catch", "a try task needs a catch: {errors, as, when, retry, do}")
            return found
        where = f"{path}.catch"
        as_name = str(spec.get("as", "error"))
        inner = (*variables, as_name)
        error_type = error_status = None
        errors = spec.get("errors", {})
        if errors:
            match = errors.get("with", {}) if isinstance(errors, Mapping) else None
            if not isinstance(match, Mapping):
                self.error(f"{where}.errors", "must be {with: {type, status}}")
            else:
                error_type = match.get("type")
                error_status = match.get("status")
                if error_status is not None and not isinstance(error_status, int):
                    self.error(f"{where}.errors.with.status", "must be an integer")
        retry = self.retry(spec["retry"], f"{where}.retry") if "retry" in spec else None
        do = self.task_list(spec["do"], f"{where}.do", inner) if "do" in spec else ()
        found["catch"] = Catch(
            error_type=error_type, error_status=error_status, as_name=as_name,
            when=self.expression(spec["when"], f"{where}.when", inner) if "when" in spec else None,
            except_when=(self.expression(spec["exceptWhen"], f"{where}.exceptWhen", inner)
                         if "exceptWhen" in spec else None),
            retry=retry, do=do)
        return found

    def retry(self, spec: Any, where: str) -> RetryPolicy | None:
        if not isinstance(spec, Mapping):
            self.error(where, "must be {delay, backoff, limit, jitter}")
            return None
        delay = self.seconds(spec.get("delay", {"seconds": 1}), f"{where}.delay")
        backoff = spec.get("backoff", {"constant": {}})
        exponential = isinstance(backoff, Mapping) and "exponential" in backoff
        if not isinstance(backoff, Mapping) or not set(backoff) <= {"exponential", "constant", "linear"}:
            self.error(f"{where}.backoff", "must be {exponential: {}} or {constant: {}}")
        limit = spec.get("limit", {})
        attempt = limit.get("attempt", {}) if isinstance(limit, Mapping) else {}
        count = attempt.get("count", 3) if isinstance(attempt, Mapping) else 3
        if not isinstance(count, int) or not 1 <= count <= 100:
            self.error(f"{where}.limit.attempt.count", "must be an integer from 1 to 100")
            count = 3
        max_seconds = (self.seconds(limit["duration"], f"{where}.limit.duration")
                       if isinstance(limit, Mapping) and "duration" in limit else None)
        jitter = spec.get("jitter", {})
        jitter = jitter if isinstance(jitter, Mapping) else {}
        low = self.seconds(jitter["from"], f"{where}.jitter.from") if "from" in jitter else 0.0
        high = self.seconds(jitter["to"], f"{where}.jitter.to") if "to" in jitter else low
        if high < low:
            self.error(f"{where}.jitter", "from must not be after to")
        return RetryPolicy(delay, exponential, count, max_seconds, low, high)

    def kind_wait(self, body: Mapping[str, Any], path: str, variables: Sequence[str]) -> dict[str, Any]:
        return {"seconds": self.seconds(body["wait"], f"{path}.wait")}

    def kind_listen(self, body: Mapping[str, Any], path: str, variables: Sequence[str]) -> dict[str, Any]:
        spec = body["listen"]
        to = spec.get("to") if isinstance(spec, Mapping) else None
        one = to.get("one") if isinstance(to, Mapping) else None
        match = one.get("with") if isinstance(one, Mapping) else None
        if not isinstance(match, Mapping) or not isinstance(match.get("type"), str) or not match["type"]:
            self.error(f"{path}.listen", "must be {to: {one: {with: {type: <event or signal type>, ...}}}} "
                                         "(any and all are not supported)")
            return {}
        found: dict[str, Any] = {"event_type": match["type"],
                                 "event_filter": self.template({k: v for k, v in match.items() if k != "type"},
                                                               f"{path}.listen.to.one.with", variables)}
        timeout = body.get("timeout")
        if timeout is not None:
            after = timeout.get("after") if isinstance(timeout, Mapping) else None
            found["seconds"] = self.seconds(after, f"{path}.timeout.after")
        return found

    def kind_emit(self, body: Mapping[str, Any], path: str, variables: Sequence[str]) -> dict[str, Any]:
        spec = body["emit"]
        outer = spec.get("event") if isinstance(spec, Mapping) else None
        event = outer.get("with") if isinstance(outer, Mapping) else None
        if not isinstance(event, Mapping) or not isinstance(event.get("type"), str) or not event["type"]:
            self.error(f"{path}.emit", "must be {event: {with: {type: ..., data: {...}}}}")
            return {}
        return {"event_type": event["type"],
                "template": self.template(event.get("data", {}), f"{path}.emit.event.with.data", variables)}

    def kind_run(self, body: Mapping[str, Any], path: str, variables: Sequence[str]) -> dict[str, Any]:
        spec = body["run"]
        child = spec.get("workflow") if isinstance(spec, Mapping) else None
        if not isinstance(child, Mapping) or not isinstance(child.get("name"), str) or not NAME.match(child["name"]):
            self.error(f"{path}.run", "must be {workflow: {name: <definition>, input: {...}}} (shell, script and "
                                      "container runs are not supported)")
            return {}
        return {"workflow": child["name"],
                "template": self.template(child.get("input", {}), f"{path}.run.workflow.input", variables)}

    def kind_raise(self, body: Mapping[str, Any], path: str, variables: Sequence[str]) -> dict[str, Any]:
        spec = body["raise"]
        error = spec.get("error") if isinstance(spec, Mapping) else None
        if not isinstance(error, Mapping) or "type" not in error or "status" not in error:
            self.error(f"{path}.raise", "must be {error: {type, status, title, detail}}")
            return {}
        return {"template": self.template(dict(error), f"{path}.raise.error", variables)}

    # --- flow -----------------------------------------------------------------------------------

    def flow(self, tasks: Sequence[Task], path: str) -> None:
        """Every `then` names a task of the same list, and every task can be reached from the first."""
        index = {t.name: i for i, t in enumerate(tasks)}

        def targets(task: Task, position: int) -> list[int]:
            directives = [task.then] + [c.then for c in task.cases]
            found: list[int] = []
            for then in directives:
                if then == "continue":
                    found.append(position + 1)
                elif then in index:
                    found.append(index[then])
            if task.kind == "switch" and not any(c.when is None for c in task.cases):
                found.append(position + 1)  # no case matched: the switch continues
            if task.when is not None:
                found.append(position + 1)  # skipped by its `if`
            return found

        for task in tasks:
            for where, then in [(f"{task.path}.then", task.then)] + [
                    (f"{task.path}.switch.{c.name}.then", c.then) for c in task.cases]:
                if then not in FLOW_DIRECTIVES and then not in index:
                    self.error(where, f"no task named {then!r} in this list (or use continue, exit, end)")
        seen: set[int] = set()
        pending = [0] if tasks else []
        while pending:
            position = pending.pop()
            if position in seen or position >= len(tasks):
                continue
            seen.add(position)
            pending.extend(targets(tasks[position], position))
        for position, task in enumerate(tasks):
            if position not in seen:
                self.error(task.path, "is unreachable: no task flows to it")


def load_document(source: str) -> Any:
    """The document as JSON-like data; INVALID_ARGUMENT naming `source` if it is neither YAML nor JSON."""
    try:
        text = source.lstrip()
        return json.loads(text) if text.startswith("{") else yaml.safe_load(source)
    except (ValueError, yaml.YAMLError) as exc:
        problem = str(exc).splitlines()[0]
        raise InvalidArgument([FieldViolation("source", f"is not valid YAML or JSON: {problem}")]) from None


def parse(source: str) -> Workflow:
    """The checked workflow; INVALID_ARGUMENT listing every problem by its path."""
    document = load_document(source)
    checker = _Checker()
    if not isinstance(document, Mapping):
        raise InvalidArgument([FieldViolation("source", "must be a workflow document (document and do)")])
    for key in document:
        if key not in _TOP_KEYS:
            checker.error(str(key), "not supported by this service (docs/workflow.md lists the subset)")
    header = document.get("document")
    name = namespace = version = summary = ""
    if not isinstance(header, Mapping):
        checker.error("document", "is required: {dsl: '1.0.0', namespace, name, version}")
    else:
        for key in header:
            if key not in _DOCUMENT_KEYS:
                checker.error(f"document.{key}", "unknown document field")
        dsl = str(header.get("dsl", ""))
        if not dsl.startswith("1.0"):
            checker.error("document.dsl", f"must be a 1.0.x version of the DSL; got {dsl or 'nothing'}")
        name, namespace = str(header.get("name", "")), str(header.get("namespace", ""))
        version, summary = str(header.get("version", "")), str(header.get("summary", ""))
        if not NAME.match(name) or len(name) > 128:
            checker.error("document.name", "must be lowercase letters, digits and single '-' (at most 128)")
        if not NAME.match(namespace) or len(namespace) > 128:
            checker.error("document.namespace", "must be lowercase letters, digits and single '-' (at most 128)")
        if not version:
            checker.error("document.version", "is required (a semantic version, e.g. 1.0.0)")
    do = checker.task_list(document.get("do"), "do", BASE_VARIABLES)
    output_as = None
    output = document.get("output")
    if output is not None:
        if not isinstance(output, Mapping) or set(output) != {"as"}:
            checker.error("output", "must be {as: <expression or object>}")
        else:
            output_as = checker.template(output["as"], "output.as", BASE_VARIABLES)
    if checker.errors:
        raise InvalidArgument([FieldViolation(p, m) for p, m in checker.errors])
    return Workflow(name=name, namespace=namespace, version=version, summary=summary, do=do,
                    output_as=output_as, by_path={p: checker.by_path[p] for p in checker.order if p in checker.by_path})
