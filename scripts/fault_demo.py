"""Fault demo: calls through an HTTP integration while its endpoint turns slow, failing, then healthy again.

Runs on loopback only and ends by itself (about 30 s by default). It starts our own
fault-injecting HTTP API (tests/support/fault_server.py), registers it as an HTTP integration
with bearer credentials (sealed with a throw-away key), and drives calls through exactly the
path InvokeIntegration takes (services.integration.connections: per-client and per-integration token
buckets -> TTL cache -> ResilientCaller: bulkhead -> circuit breaker -> attempt deadline ->
retries with full jitter and a budget -> the cached value as a fallback while the breaker is open).

It prints a timeline: every circuit breaker state change as it happens, and per phase the calls,
fresh answers, cache hits, stale fallbacks served, failures by code, retries and calls the open
breaker refused; then the final success ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from chassis.crypto import Cipher
from chassis.errors import ServiceError
from chassis.resilience import BreakerBoard, ResilientCaller
from services.integration.clients.base import Shared
from services.integration.clients.session import guarded_session
from services.integration.connections import IntegrationConnections, target_name
from services.integration.rows import IntegrationRow
from services.integration.targets import TargetGuard, parse_allowed
from tests.support.fault_server import FaultServer

TOKEN = "demo-secret-token-0123456789"


@dataclass
class Phase:
    """One stretch of the demo: the endpoint's mode for a number of seconds."""

    mode: str
    seconds: float
    delay: float = 0.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/fault_demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=["integration", "toggles"], default="integration",
                        help="integration: this one; toggles: `protomesh fault` toggles against the mesh's own "
                             "services, on a mesh it starts (scripts/fault_demo_toggles.py)")
    parser.add_argument("--seconds", type=float, default=28.0,
                        help="total length, split 20%% healthy, 20%% slow, 30%% failing, 30%% healthy (10-120)")
    parser.add_argument("--rate", type=float, default=20.0, help="calls started per second (1-100)")
    parser.add_argument("--keys", type=int, default=4, help="distinct items read, so the cache holds a few (1-50)")
    parser.add_argument("--slow-delay", type=float, default=0.6,
                        help="seconds the slow endpoint takes (the attempt deadline is 0.3 s)")
    args = parser.parse_args(argv)
    if not (10 <= args.seconds <= 120 and 1 <= args.rate <= 100 and 1 <= args.keys <= 50):
        parser.error("--seconds 10-120, --rate 1-100, --keys 1-50")
    return args


def integration_row(cipher: Cipher, base_url: str) -> IntegrationRow:
    """The demo's integration as the service would store it (credentials sealed)."""
    integration_id = uuid.uuid4()
    now = datetime.now(UTC)
    sealed = cipher.seal({"token": TOKEN}, str(integration_id))
    assert sealed is not None
    config = {
        "base_url": base_url, "auth": "bearer",
        "resilience": {"timeout_seconds": 1.0, "attempt_timeout_seconds": 0.3, "max_attempts": 3,
                       "initial_backoff_seconds": 0.05, "max_backoff_seconds": 0.2, "failure_threshold": 5,
                       "recovery_timeout_seconds": 2.0, "max_concurrent": 16},
        "rate_limit": {"requests_per_second": 500, "burst": 500},
        "cache": {"enabled": True, "ttl_seconds": 1.0, "stale_seconds": 120},
    }
    return IntegrationRow(
        id=integration_id, name="payments-api", kind="http", description="fault demo", config=config,
        credentials_ciphertext=sealed.ciphertext, credentials_nonce=sealed.nonce, credentials_key_id=sealed.key_id,
        credential_keys=["token"], enabled=True, labels={}, probe_kind=None, probe_ok=None, probe_detail=None,
        probe_latency_ms=None, probed_at=None, version=1, created_at=now, updated_at=now,
        organization_id="fault-demo")


async def run(args: argparse.Namespace) -> float:
    total = args.seconds
    phases = [Phase("healthy", 0.2 * total), Phase("slow", 0.2 * total, args.slow_delay),
              Phase("failing", 0.3 * total), Phase("healthy", 0.3 * total)]
    server = FaultServer(token=TOKEN).start()
    caller = ResilientCaller(breakers=BreakerBoard())
    cipher = Cipher(os.urandom(32), source="demo")
    row = integration_row(cipher, server.url)
    target = target_name(row.id)
    started = time.monotonic()
    seen_transitions = 0
    totals: Counter[str] = Counter()

    def stamp() -> str:
        return f"[{time.monotonic() - started:6.2f}s]"

    def report_transitions(phase: str) -> None:
        nonlocal seen_transitions
        for t in caller.breakers.transitions[seen_transitions:]:
            print(f"{stamp()}   breaker -> {t.state.upper():<11} (endpoint {phase})", flush=True)
        seen_transitions = len(caller.breakers.transitions)

    print(f"fault demo: {server.url} as integration {row.name!r}; {args.rate:g} calls/s, {args.keys} keys, "
          f"attempt deadline 0.3 s, call deadline 1 s, breaker opens after 5 failures and probes after 2 s")
    try:
        # The fault server is on loopback, which integrations may reach only when admitted: exactly its port.
        guard = TargetGuard(parse_allowed(f"127.0.0.1:{server.port}"))
        async with guarded_session(guard) as http:
            connections = IntegrationConnections(caller, cipher, Shared(http=http, targets=guard),
                                                 probe_timeout=1.0, max_client_keys=10)
            n = 0
            for phase in phases:
                server.set_mode(phase.mode, phase.delay)
                label = f"{phase.mode}" + (f" ({phase.delay:g}s)" if phase.delay else "")
                print(f"{stamp()} == endpoint {label} for {phase.seconds:.1f}s", flush=True)
                before = connections.outcome(row.id)
                retries0, short0, budget0 = before.retries, before.short_circuited, before.budget_exhausted
                counts: Counter[str] = Counter()
                in_flight: set[asyncio.Task[None]] = set()
                phase_end = time.monotonic() + phase.seconds

                async def one(i: int, counts: Counter[str]) -> None:
                    # Every fourth call is a charge: not idempotent, so never retried, cached or served stale.
                    params = ({"method": "POST", "path": "/v1/charges", "body": {"amount": i}} if i % 4 == 3
                              else {"method": "GET", "path": f"/v1/items/{i % args.keys}"})
                    try:
                        # pragma: allowlist nextline secret - a rate-limit client key (a name), not a credential
                        result = await connections.invoke(row, "request", params, client_key="demo")
                        counts["stale fallback" if result.stale else "cache hit" if result.from_cache
                               else "fresh"] += 1
                    except ServiceError as exc:
                        counts[f"failed {exc.code.name}"] += 1

                while time.monotonic() < phase_end:
                    task = asyncio.create_task(one(n, counts))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                    n += 1
                    await asyncio.sleep(1 / args.rate)
                    report_transitions(label)
                if in_flight:
                    await asyncio.wait(in_flight, timeout=5)
                report_transitions(label)
                after = connections.outcome(row.id)
                calls = sum(counts.values())
                ok = counts["fresh"] + counts["cache hit"] + counts["stale fallback"]
                failures = ", ".join(f"{k[7:]} {v}" for k, v in sorted(counts.items()) if k.startswith("failed"))
                print(f"{stamp()}    {calls} calls: {counts['fresh']} fresh, {counts['cache hit']} cache hits, "
                      f"{counts['stale fallback']} stale fallbacks, {calls - ok} failed"
                      f"{f' ({failures})' if failures else ''}; retries {after.retries - retries0}, "
                      f"refused by the open breaker {after.short_circuited - short0}, "
                      f"retry budget exhausted {after.budget_exhausted - budget0}", flush=True)
                totals.update(counts)
            status = await caller.breakers.status(target)
            await connections.close()
    finally:
        server.stop()
    calls = sum(totals.values())
    ok = totals["fresh"] + totals["cache hit"] + totals["stale fallback"]
    outcome = caller.outcomes[target]
    print(f"{stamp()} == done: breaker {status['state']}; endpoint saw {sum(server.requests.values())} requests "
          f"({dict(server.outcomes)})")
    print(f"totals: {calls} calls, {totals['fresh']} fresh, {totals['cache hit']} cache hits, "
          f"{totals['stale fallback']} stale fallbacks served, {calls - ok} failed; "
          f"retries {outcome.retries}, short-circuited {outcome.short_circuited}")
    ratio = ok / calls if calls else 0.0
    print(f"success ratio: {ok}/{calls} = {ratio:.1%} (answers from the endpoint or the cache); "
          f"fresh only: {totals['fresh'] / calls if calls else 0:.1%}")
    return ratio


def main(argv: list[str] | None = None) -> int:
    """Run the demo; exit 0 when it completed and the breaker closed again at the end."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    if args.scenario == "toggles":
        from scripts.fault_demo_toggles import run as run_toggles

        return run_toggles(args.seconds / 4)
    ratio = asyncio.run(run(args))
    return 0 if ratio > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
