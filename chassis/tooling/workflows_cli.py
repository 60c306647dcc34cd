"""`protomesh workflows`: list executions, run a definition file, show an execution as a tree, its history.

Calls protomesh.workflow.v1.WorkflowService through the gateway with the CLI session's token, as any client.
`show` draws the execution's tasks as a tree (by their paths), each with its status, attempt and duration.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from google.protobuf import json_format, struct_pb2

from chassis.tooling.identity_cli import Caller, _gateway_option, _grpc_command

RUN_WAIT_SECONDS = 60.0
"""How long `run` waits for the execution to finish before printing where it stands."""
_FINISHED = {"SUCCEEDED", "FAILED", "CANCELLED", "TERMINATED", "NEEDS_ATTENTION"}


def add_commands(subparsers: Any) -> None:
    """Register `workflows` on the protomesh command line."""
    workflows = subparsers.add_parser("workflows", help="workflow executions: list, show, run, history",
                                      description="Workflow definitions and executions (the workflow service).")
    commands = workflows.add_subparsers(dest="workflows_command", required=True)
    listing = commands.add_parser("list", help="executions, newest first")
    listing.add_argument("--definition", default="", help="only executions of this definition")
    listing.add_argument("-n", "--limit", type=int, default=20, help="how many (default: %(default)s)")
    show = commands.add_parser("show", help="an execution as a tree of its tasks, with status and duration")
    show.add_argument("execution_id")
    history = commands.add_parser("history", help="every task attempt of an execution, as JSON lines")
    history.add_argument("execution_id")
    run = commands.add_parser("run", help="register (or update) a definition file and run it")
    run.add_argument("file", help="a definition in the Serverless Workflow DSL (YAML or JSON)")
    run.add_argument("--input", default="{}", help="the workflow's input as a JSON object")
    run.add_argument("--no-wait", action="store_true", help="print the execution id and return at once")
    for parser in (listing, show, history, run):
        _gateway_option(parser)
    listing.set_defaults(func=_grpc_command(_list))
    show.set_defaults(func=_grpc_command(_show))
    history.set_defaults(func=_grpc_command(_history))
    run.set_defaults(func=_grpc_command(_run))


def _stub(caller: Caller) -> Any:
    from protomesh.workflow.v1.workflow_service_pb2_grpc import WorkflowServiceStub

    return WorkflowServiceStub(caller.channel)


def _status(value: int) -> str:
    from protomesh.workflow.v1 import workflow_pb2

    return workflow_pb2.ExecutionStatus.Name(value).removeprefix("EXECUTION_STATUS_")


def _list(caller: Caller, args: argparse.Namespace) -> int:
    from protomesh.workflow.v1 import workflow_service_pb2 as pb

    reply = caller.call(_stub(caller).ListExecutions,
                        pb.ListExecutionsRequest(definition_name=args.definition, page_size=max(1, args.limit)))
    for execution in reply.executions:
        print(f"{execution.execution_id}  {_status(execution.status):<15} {execution.definition_name}"
              f"@{execution.revision}  {execution.create_time.ToDatetime():%Y-%m-%d %H:%M:%S}  {execution.waiting}")
    if not reply.executions:
        print("(no executions)", file=sys.stderr)
    return 0


def tree_lines(tasks: list[Any]) -> list[str]:
    """The task attempts as an indented tree: a task's children are the tasks whose path extends its path."""
    from protomesh.workflow.v1 import workflow_pb2

    lines = []
    paths = [t.path for t in tasks]
    for task in tasks:
        depth = sum(1 for other in set(paths) if other != task.path and task.path.startswith(other + "."))
        seconds = ((task.end_time.ToNanoseconds() - task.start_time.ToNanoseconds()) / 1e9
                   if task.end_time.ByteSize() else None)
        status = workflow_pb2.TaskStatus.Name(task.status).removeprefix("TASK_STATUS_")
        took = f"{seconds * 1000:.1f} ms" if seconds is not None else "…"
        attempt = f" attempt {task.attempt}" if task.attempt > 1 else ""
        mark = " (compensation)" if task.compensation else ""
        error = f"  {task.error.title}: {task.error.detail}".rstrip(": ") if task.error.title else ""
        name = task.path.rsplit(".", 1)[-1]
        lines.append(f"{'  ' * depth}{name} [{task.kind}] {status}{attempt} {took}{mark}{error}")
    return lines


def _show(caller: Caller, args: argparse.Namespace) -> int:
    from protomesh.workflow.v1 import workflow_service_pb2 as pb

    reply = caller.call(_stub(caller).GetExecutionHistory,
                        pb.GetExecutionHistoryRequest(execution_id=args.execution_id))
    execution = reply.execution
    print(f"{execution.definition_name}@{execution.revision} {execution.execution_id} {_status(execution.status)}"
          + (f" (waiting: {execution.waiting})" if execution.waiting else "")
          + (f" trace {execution.trace_id}" if execution.trace_id else ""))
    for line in tree_lines(list(reply.tasks)):
        print(f"  {line}")
    if execution.error.title:
        print(f"error at {execution.error.instance}: {execution.error.title} {execution.error.detail}".rstrip())
    return 0


def _history(caller: Caller, args: argparse.Namespace) -> int:
    from protomesh.workflow.v1 import workflow_service_pb2 as pb

    reply = caller.call(_stub(caller).GetExecutionHistory,
                        pb.GetExecutionHistoryRequest(execution_id=args.execution_id))
    for task in reply.tasks:
        print(json.dumps(json_format.MessageToDict(task, preserving_proto_field_name=True)))
    return 0


def _run(caller: Caller, args: argparse.Namespace) -> int:
    import grpc
    import yaml

    from protomesh.workflow.v1 import workflow_service_pb2 as pb

    with open(args.file, encoding="utf-8") as handle:
        source = handle.read()
    try:
        data = json.loads(args.input)
    except ValueError as exc:
        raise SystemExit(f"--input is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SystemExit("--input must be a JSON object")
    try:
        document = yaml.safe_load(source)  # JSON is YAML too; the service checks the document properly
    except yaml.YAMLError as exc:
        raise SystemExit(f"{args.file} is not YAML or JSON: {exc}") from None
    header = document.get("document") if isinstance(document, dict) else None
    name = str(header.get("name", "")) if isinstance(header, dict) else ""
    stub = _stub(caller)
    try:
        caller.call(stub.CreateDefinition, pb.CreateDefinitionRequest(source=source))
    except grpc.RpcError as error:
        if not isinstance(error, grpc.Call) or error.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
        caller.call(stub.UpdateDefinition, pb.UpdateDefinitionRequest(name=name, source=source))
    payload = struct_pb2.Struct()
    payload.update(data)
    started = caller.call(stub.StartExecution, pb.StartExecutionRequest(definition_name=name, input=payload))
    execution = started.execution
    print(execution.execution_id)
    if args.no_wait:
        return 0
    deadline = time.monotonic() + RUN_WAIT_SECONDS
    while _status(execution.status) not in _FINISHED and time.monotonic() < deadline:
        time.sleep(0.2)
        request = pb.GetExecutionRequest(execution_id=execution.execution_id)
        execution = caller.call(stub.GetExecution, request).execution
    print(json.dumps(json_format.MessageToDict(execution, preserving_proto_field_name=True), indent=2))
    return 0 if _status(execution.status) == "SUCCEEDED" else 1
