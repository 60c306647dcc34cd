"""`protomesh audit`: read the audit trail (every write and every denied call) through the gateway.

It calls `protomesh.identity.v1.AuditService/ListAuditRecords` with the CLI session's token, as any client
would, so it shows what the session's principal may see (`audit.read`: an organization admin its
organization's records, a platform admin every organization's). `-f` keeps polling for new records; records
reach the trail through each service's outbox, so one may arrive a moment after a later one: each poll
looks back `--overlap` seconds and prints only records it has not printed yet.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format, timestamp_pb2

from chassis.tooling.identity_cli import Caller, _gateway_option, _grpc_command

DEFAULT_LIMIT = 50
POLL_SECONDS = 2.0
OVERLAP_SECONDS = 60.0
"""How far back each -f poll looks: longer than a record normally takes through an outbox and NATS."""
REMEMBERED = 100_000
"""Record ids -f remembers to print each once."""
_SINCE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def add_commands(subparsers: Any) -> None:
    """Register `audit` on the protomesh command line."""
    audit = subparsers.add_parser(
        "audit", help="show the audit trail (writes and denied calls); -f follows it",
        description="Show audit records, oldest of the selection first: every write (any RPC that is not "
                    "read-only) and every denied call (401/403) of every service, with who, what, on which "
                    "resource, the decision, status, trace id and source address. Needs the audit.read "
                    "permission (an organization admin sees its organization, a platform admin all).",
        epilog="examples: protomesh audit --action RegisterAgent; protomesh audit --principal apikey:<id> -f")
    audit.add_argument("--principal", default="", help="only this principal (subject: a user id, client:<id>, "
                                                       "apikey:<id>, service:<name>)")
    audit.add_argument("--action", default="", help="only this action: a gRPC path, a service "
                                                    "(protomesh.agent.v1.AgentService) or a method name")
    audit.add_argument("--since", default="", help="only records of the last 30s/15m/12h/7d, or after an ISO time")
    audit.add_argument("--decision", choices=("allowed", "denied"), help="only allowed or only denied calls")
    audit.add_argument("--organization", default="", help="a platform admin's choice of organization (id)")
    audit.add_argument("-n", "--limit", type=int, default=DEFAULT_LIMIT,
                       help="how many of the newest records to show first (default: %(default)s)")
    audit.add_argument("-f", "--follow", action="store_true", help="keep printing new records until Ctrl-C")
    audit.add_argument("--json", action="store_true", help="one JSON object per record")
    _gateway_option(audit)
    audit.set_defaults(func=_grpc_command(_audit))


def since_time(text: str, now: datetime | None = None) -> datetime | None:
    """`--since`: a duration back from now (30s, 15m, 12h, 7d) or an ISO 8601 time; None when empty."""
    if not text:
        return None
    match = _SINCE.match(text.strip())
    if match:
        return (now or datetime.now(UTC)) - timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"--since {text!r}: give a duration like 30s, 15m, 12h or 7d, or an ISO time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _request(args: argparse.Namespace, start: datetime | None, page_size: int, token: str = "") -> Any:
    from protomesh.identity.v1 import audit_pb2
    from protomesh.identity.v1 import audit_service_pb2 as pb

    request = pb.ListAuditRecordsRequest(
        page_size=page_size, page_token=token, principal=args.principal, action=args.action,
        organization_id=args.organization,
        decision={"allowed": audit_pb2.AUDIT_DECISION_ALLOWED, "denied": audit_pb2.AUDIT_DECISION_DENIED}.get(
            args.decision or "", audit_pb2.AUDIT_DECISION_UNSPECIFIED))
    if start is not None:
        request.start_time.FromDatetime(start)
    return request


def _records(caller: Caller, args: argparse.Namespace, start: datetime | None, limit: int | None) -> list[Any]:
    """Records newest first: `limit` of them, or (None) every one since `start`."""
    from protomesh.identity.v1 import audit_service_pb2_grpc as rpc

    stub = rpc.AuditServiceStub(caller.channel)
    found: list[Any] = []
    token = ""
    while limit is None or len(found) < limit:
        size = 1000 if limit is None else min(1000, limit - len(found))
        page = caller.call(stub.ListAuditRecords, _request(args, start, size, token))
        found += page.records
        token = page.page_info.next_page_token
        if not token:
            break
    return found


def format_record(record: Any) -> str:
    """One record as a line: time, decision, status, principal (kind), organization, action, resource, source."""
    from protomesh.identity.v1 import audit_pb2

    kind = audit_pb2.AuditPrincipalKind.Name(record.principal_kind).removeprefix("AUDIT_PRINCIPAL_KIND_").lower()
    decision = audit_pb2.AuditDecision.Name(record.decision).removeprefix("AUDIT_DECISION_").lower()
    cross = " cross-org" if record.cross_org else ""
    return (f"{_time(record.time)}  {decision:<7}  {record.status:<19}  {record.principal or '-'} ({kind}{cross})  "
            f"org={record.organization_id or '-'}  {record.action}  resource={record.resource or '-'}  "
            f"from={record.source_address or '-'}  trace={record.trace_id or '-'}")


def _time(value: timestamp_pb2.Timestamp) -> str:
    return value.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _print(record: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(json_format.MessageToDict(record, preserving_proto_field_name=True)), flush=True)
    else:
        print(format_record(record), flush=True)


def _audit(caller: Caller, args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise SystemExit("--limit must be 0 or more")
    start = since_time(args.since)
    seen: collections.deque[str] = collections.deque(maxlen=REMEMBERED)
    printed: set[str] = set()
    first = _records(caller, args, start, args.limit) if args.limit else []
    for record in reversed(first):  # the list is newest first; a trail reads oldest first
        _remember(record.record_id, seen, printed)
        _print(record, args.json)
    if not args.follow:
        if not first and not args.json:
            print("(no audit records)", file=sys.stderr)
        return 0
    try:
        for record in _follow(caller, args, first, seen, printed):
            _print(record, args.json)
    except KeyboardInterrupt:
        return 0
    return 0


def _follow(caller: Caller, args: argparse.Namespace, first: list[Any], seen: collections.deque[str],
            printed: set[str]) -> Iterator[Any]:
    """New records as they reach the trail, each once, oldest first within a poll."""
    newest = first[0].time.ToDatetime(tzinfo=UTC) if first else datetime.now(UTC)
    while True:
        time.sleep(POLL_SECONDS)
        start = newest - timedelta(seconds=OVERLAP_SECONDS)
        fresh = [r for r in _records(caller, args, start, None) if r.record_id not in printed]
        for record in reversed(fresh):
            _remember(record.record_id, seen, printed)
            newest = max(newest, record.time.ToDatetime(tzinfo=UTC))
            yield record


def _remember(record_id: str, seen: collections.deque[str], printed: set[str]) -> None:
    if len(seen) == seen.maxlen:
        printed.discard(seen[0])
    seen.append(record_id)
    printed.add(record_id)
