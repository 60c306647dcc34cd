"""`protomesh fault set|list|clear`: failure toggles of the running mesh (chassis.faults), and their lines in status."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import nats

from chassis import faults
from chassis.events.streams import inbox_prefix_of, nats_servers
from chassis.tooling.catalog import load_catalog
from chassis.tooling.gateway_faults import unknown_scope
from chassis.tooling.supervisor import read_state

T = TypeVar("T")
_SPAN = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

HELP = """\
Toggles apply without restarting anything: at the gateway (Envoy's fault filter, through its runtime) for calls
from outside, inside the replicas for calls between services, or both; each clears itself after --duration.
  protomesh fault set context --abort UNAVAILABLE --percent 50 --duration 30s
  protomesh fault set agent.GetAgent --delay 300ms --where gateway --duration 2m
  protomesh fault list
  protomesh fault clear context          (or: protomesh fault clear --all)
"""


def span_seconds(text: str, field: str) -> float:
    """`300ms`, `30s`, `5m`, `1h` or a bare number of seconds, as seconds; FaultError names the field."""
    match = _SPAN.match(text.strip())
    if not match:
        raise faults.FaultError(field, f"{text!r} is not a duration like 300ms, 30s, 5m or 1h")
    return float(match.group(1)) * _SECONDS[match.group(2) or "s"]


def parse_scope(scope: str) -> tuple[str, str]:
    """`service`, `service.Method` or `service/Method` as (service, method or `all`)."""
    service, _, method = scope.replace("/", ".").partition(".")
    return service, method or faults.ALL_METHODS


def _nats_url(state_dir: Path) -> str:
    url = os.environ.get("NATS_URL") or (read_state(state_dir) or {}).get("nats_url")
    if not url:
        raise SystemExit("no mesh is running from this folder (`protomesh up`), and NATS_URL is not set")
    return str(url)


def _with_bucket(state_dir: Path, action: Callable[[Any], Awaitable[T]]) -> T:
    url = _nats_url(state_dir)

    async def run() -> T:
        nc = await nats.connect(nats_servers(url), name="protomesh-fault-cli", allow_reconnect=False, connect_timeout=3,
                                inbox_prefix=inbox_prefix_of(url))
        try:
            return await action(await faults.open_bucket(nc.jetstream()))
        finally:
            await nc.close()

    return asyncio.run(run())


def cmd_set(args: argparse.Namespace) -> int:
    """Set (or replace) the toggle of a service or method."""
    service, method = parse_scope(args.scope)
    try:
        toggle = faults.make_toggle(
            service=service, method=method, delay_ms=round(span_seconds(args.delay, "delay") * 1000),
            abort=args.abort or "", percent=args.percent, where=args.where,
            duration_seconds=span_seconds(args.duration, "duration"))
    except faults.FaultError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problem = unknown_scope(toggle, load_catalog())
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    async def put(kv: Any) -> None:
        await kv.put(toggle.key, toggle.to_json())

    _with_bucket(args.state_dir, put)
    print(f"set: {toggle.describe()}")
    return 0


async def _active(kv: Any) -> list[faults.FaultToggle]:
    now = time.time()
    return sorted((t for t in (await faults.read_all(kv)).values() if t.active(now)), key=lambda t: t.key)


def cmd_list(args: argparse.Namespace) -> int:
    """Print the active toggles."""
    toggles = _with_bucket(args.state_dir, _active)
    if args.json:
        print(json.dumps([{**json.loads(t.to_json()), "key": t.key} for t in toggles]))
        return 0
    now = time.time()
    for toggle in toggles:
        print(toggle.describe(now))
    if not toggles:
        print("no failure toggle is set")
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    """Remove one toggle, every toggle of a service, or all of them."""
    if not args.all and not args.scope:
        print("error: scope: name a service or method to clear, or pass --all", file=sys.stderr)
        return 2
    service, method = parse_scope(args.scope or "")

    async def clear(kv: Any) -> list[str]:
        keys = list(await faults.read_all(kv))
        chosen = [k for k in keys if args.all or k == f"{service}.{method}"
                  or (method == faults.ALL_METHODS and k.startswith(f"{service}."))]
        for key in chosen:
            await kv.delete(key)
        return chosen

    removed = _with_bucket(args.state_dir, clear)
    print(f"cleared: {', '.join(removed)}" if removed else "nothing to clear")
    return 0


def status_lines(state_dir: Path) -> list[str]:
    """The lines `protomesh status` adds about failure toggles (never failing the status itself)."""
    try:
        toggles = _with_bucket(state_dir, _active)
    except (Exception, SystemExit) as exc:  # the status shows what it can: NATS being down is shown above it
        return [f"failure toggles: unreadable ({type(exc).__name__})"]
    if not toggles:
        return ["failure toggles: none"]
    now = time.time()
    return ["failure toggles (protomesh fault list):", *(f"  {t.describe(now)}" for t in toggles)]


def add_commands(sub: Any) -> None:
    """Register `fault` and its subcommands on the CLI's subparsers."""
    fault = sub.add_parser("fault", help="failure toggles at run time: latency and aborts per service or method",
                           description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = fault.add_subparsers(dest="fault_command", required=True, metavar="ACTION")
    put = actions.add_parser("set", help="inject latency and/or aborts into a service's or a method's calls")
    put.add_argument("scope", metavar="SERVICE[.METHOD]", help="e.g. context or context.GetContext")
    put.add_argument("--delay", default="0", help="latency added to each affected call, e.g. 300ms (default none)")
    put.add_argument("--abort", metavar="STATUS", help="gRPC status the affected calls fail with, e.g. UNAVAILABLE")
    put.add_argument("--percent", type=int, default=100, help="share of calls affected, 1-100 (default 100)")
    put.add_argument("--where", choices=faults.WHERE, default="both",
                     help="gateway (calls from outside), mesh (calls between services) or both (default)")
    put.add_argument("--duration", default="5m", help="after this the toggle clears itself (default 5m, at most 24h)")
    put.set_defaults(func=cmd_set)
    listing = actions.add_parser("list", help="the active toggles")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=cmd_list)
    clear = actions.add_parser("clear", help="remove toggles now")
    clear.add_argument("scope", nargs="?", metavar="SERVICE[.METHOD]", help="a service (all its toggles) or a method")
    clear.add_argument("--all", action="store_true", help="every toggle")
    clear.set_defaults(func=cmd_clear)
