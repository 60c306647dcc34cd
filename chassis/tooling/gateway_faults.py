"""Failure toggles at the gateway: Envoy's fault filter, driven per method through Envoy's runtime.

Envoy's fault filter reads its percentages, delay and abort status from the runtime, and for a request
carrying `x-envoy-downstream-service-cluster: X` from the keys `fault.http.X.*` first. A header-mutation
filter sets that header to the request's gRPC path (after the transcoder, so REST calls have one too,
and whatever a client sent is overwritten), which makes every method a "downstream cluster" of its own:
`fault.http./protomesh.context.v1.ContextService/GetContext.abort.abort_percent`. Nothing in the
bootstrap names a method, so a new RPC needs no new config; only the runtime changes, without a restart.

`GatewayFaultSync` mirrors the toggles (chassis.faults, NATS KV) into Envoy's admin runtime layer
(`POST /runtime_modify`) whenever they change, and at least every `interval`: that clears a toggle at its
end, and a restarted Envoy (whose admin layer starts empty) gets the toggles again. It runs in the
`protomesh up` supervisor next to the Envoy it drives; on Kubernetes the same loop can run beside Envoy
(`python -m chassis.tooling.gateway_faults --admin 127.0.0.1:9901`, NATS_URL in its environment).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable
from typing import Any

import nats

from chassis import faults
from chassis.events.streams import inbox_prefix_of, nats_servers
from chassis.tooling.catalog import Catalog, load_catalog

logger = logging.getLogger(__name__)

RUNTIME_PREFIX = "fault.http."
DOWNSTREAM_HEADER = "x-envoy-downstream-service-cluster"


def _any(type_name: str, **fields: Any) -> dict[str, Any]:
    return {"name": "", "typed_config": {"@type": f"type.googleapis.com/{type_name}", **fields}}


# google.rpc's HTTP mapping of each gRPC status (what the transcoder answers REST callers for a service's error).
HTTP_FOR_GRPC = {"CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404,
                 "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429,
                 "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501,
                 "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401}
_REST = {"name": "x-envoy-original-method", "present_match": True}
"""The transcoder sets this on a REST call; a native gRPC call has none."""


def fault_filters() -> list[dict[str, Any]]:
    """The HTTP filters that go after the transcoder, before the router.

    Two fault filters, one per kind of caller: Envoy answers a fault it injects into a transcoded REST call as
    plain HTTP (a gRPC status would reach the client as 200), so REST calls abort with the HTTP status of the
    toggle's gRPC code, and native gRPC calls with the gRPC code itself. Each request matches one of them.
    """
    name_method = _any(
        "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
        mutations={"request_mutations": [{"append": {
            "header": {"key": DOWNSTREAM_HEADER, "value": "%REQ(:PATH)%"},
            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}}]})
    name_method["name"] = "protomesh.fault_scope"
    return [name_method, _fault("grpc", {"grpc_status": 14}, {**_REST, "present_match": False}),
            _fault("rest", {"http_status": 503}, _REST)]


def _fault(kind: str, status: dict[str, int], caller: dict[str, Any]) -> dict[str, Any]:
    fault = _any(
        "envoy.extensions.filters.http.fault.v3.HTTPFault",
        # Both off by default; the runtime keys per method turn them on. The configured status and delay are
        # only defaults the runtime overrides (a delay must be configured for the delay keys to count).
        abort={**status, "percentage": {"numerator": 0, "denominator": "HUNDRED"}},
        delay={"fixed_delay": "0.001s", "percentage": {"numerator": 0, "denominator": "HUNDRED"}},
        headers=[caller],
        # One stat per method would be a stat per path a client can send: keep only the filter's totals.
        disable_downstream_cluster_stats=True)
    fault["name"] = f"protomesh.fault.{kind}"
    return fault


def runtime_layers() -> dict[str, Any]:
    """The bootstrap's runtime: one admin layer, the only one /runtime_modify may write (empty at start)."""
    return {"layers": [{"name": "admin", "admin_layer": {}}]}


def runtime_values(toggles: dict[str, faults.FaultToggle], catalog: Catalog, now: float | None = None
                   ) -> dict[str, str]:
    """The runtime keys (and values) that make Envoy inject the active gateway toggles."""
    now = now if now is not None else time.time()
    values: dict[str, str] = {}
    for service in catalog.services:
        for method in service.methods:
            toggle = faults.effective(toggles, service.name, method.name, "gateway", now)
            if toggle is None:
                continue
            base = f"{RUNTIME_PREFIX}{method.grpc_path}"
            if toggle.delay_ms:
                values[f"{base}.delay.fixed_delay_percent"] = str(toggle.percent)
                values[f"{base}.delay.fixed_duration_ms"] = str(toggle.delay_ms)
            code = toggle.abort_code
            if code is not None:
                values[f"{base}.abort.abort_percent"] = str(toggle.percent)
                values[f"{base}.abort.grpc_status"] = str(code.value[0])
                values[f"{base}.abort.http_status"] = str(HTTP_FOR_GRPC[code.name])
    return values


def unknown_scope(toggle: faults.FaultToggle, catalog: Catalog) -> str | None:
    """Why the toggle names nothing in the contracts (the field and the choices), or None."""
    if toggle.service not in catalog.names:
        return f"service: no mesh service {toggle.service!r}; known: {', '.join(catalog.names)}"
    methods = [m.name for m in catalog.service(toggle.service).methods]
    if toggle.method != faults.ALL_METHODS and toggle.method not in methods:
        return f"method: {toggle.service} has no method {toggle.method!r}; it has {', '.join(methods)}"
    return None


class EnvoyRuntime:
    """Envoy's admin runtime layer at host:port."""

    def __init__(self, admin: str, timeout: float = 2.0) -> None:
        self._base = f"http://{admin}"
        self._timeout = timeout

    def fault_entries(self) -> dict[str, str]:
        """The fault keys the runtime holds now, with their values."""
        with urllib.request.urlopen(f"{self._base}/runtime", timeout=self._timeout) as reply:  # noqa: S310 the local Envoy's admin URL the supervisor made
            entries = json.load(reply).get("entries", {})
        return {key: str(entry.get("final_value", "")) for key, entry in entries.items()
                if key.startswith(RUNTIME_PREFIX)}

    def modify(self, values: dict[str, str]) -> None:
        """Set keys in the admin layer; an empty value removes the key."""
        if not values:
            return
        query = urllib.parse.urlencode(values)
        request = urllib.request.Request(f"{self._base}/runtime_modify?{query}", method="POST")  # noqa: S310 the Envoy admin URL given to this sync, never a caller's
        with urllib.request.urlopen(request, timeout=self._timeout) as reply:  # noqa: S310 the Envoy admin URL given to this sync, never a caller's
            reply.read()


def changes(current: dict[str, str], desired: dict[str, str]) -> dict[str, str]:
    """What to send to /runtime_modify to go from `current` to `desired` (removals as empty values)."""
    out = {key: value for key, value in desired.items() if current.get(key) != value}
    out.update({key: "" for key in current if key not in desired})
    return out


class GatewayFaultSync:
    """Keeps an Envoy's runtime equal to the gateway's active toggles, in a thread of its own."""

    def __init__(self, nats_url: str, admin: str, catalog: Catalog, *, interval: float = 0.5) -> None:
        self._nats_url = nats_url
        self._runtime = EnvoyRuntime(admin)
        self._catalog = catalog
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> GatewayFaultSync:
        """Start following the toggles (returns itself, for one-line use)."""
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="gateway-faults", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following; Envoy keeps what it has (it is stopped next by the supervisor anyway)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self._follow()
            except Exception as exc:  # NATS or Envoy away for a moment: try again, the runtime catches up
                logger.warning("gateway fault sync failed (%s); retrying", exc)
                await asyncio.sleep(1.0)

    async def _follow(self) -> None:
        nc = await nats.connect(nats_servers(self._nats_url), name="protomesh-gateway-faults",
                                max_reconnect_attempts=-1,
                                reconnect_time_wait=0.5, inbox_prefix=inbox_prefix_of(self._nats_url))
        try:
            kv = await faults.open_bucket(nc.jetstream())
            toggles: dict[str, faults.FaultToggle] = {}
            changed = asyncio.Event()
            watch = asyncio.create_task(faults.follow(kv, ">", toggles, changed))
            try:
                while not self._stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), self._interval)
                    changed.clear()
                    if watch.done():
                        watch.result()  # re-raises what ended the watch
                    await self.reconcile(kv, dict(toggles))
            finally:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watch
        finally:
            await nc.close()

    async def reconcile(self, kv: Any, toggles: dict[str, faults.FaultToggle]) -> None:
        """Delete expired toggles from the bucket and bring Envoy's runtime in line with the rest."""
        now = time.time()
        for key, toggle in toggles.items():
            if not toggle.active(now):
                with contextlib.suppress(Exception):  # someone else cleared it first
                    await kv.delete(key)
                logger.info("fault toggle cleared itself", extra={"key": key})
        desired = runtime_values(toggles, self._catalog, now)
        current = await asyncio.to_thread(self._runtime.fault_entries)
        diff = changes(current, desired)
        if diff:
            await asyncio.to_thread(self._runtime.modify, diff)
            logger.info("gateway fault runtime changed", extra={"keys": len(diff)})


def follow_from(nats_url: str | None, admin: str, catalog: Catalog) -> GatewayFaultSync | None:
    """The supervisor's hook: follow the toggles for its Envoy when the mesh has NATS (else None)."""
    return GatewayFaultSync(nats_url, admin, catalog).start() if nats_url else None


def stop(sync: GatewayFaultSync | None) -> None:
    """The supervisor's other hook: stop following, if it was."""
    if sync is not None:
        sync.stop()


def main(argv: Iterable[str] | None = None) -> int:
    """`python -m chassis.tooling.gateway_faults --admin HOST:PORT`: the sync beside an Envoy (Kubernetes)."""
    parser = argparse.ArgumentParser(description="Mirror protomesh's failure toggles into an Envoy's runtime.")
    parser.add_argument("--admin", default="127.0.0.1:9901", help="Envoy admin host:port (default: %(default)s)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    nats_url = os.environ.get("NATS_URL")
    if not nats_url:
        parser.error("set NATS_URL (the toggles' bucket is in NATS JetStream)")
    logging.basicConfig(level=logging.INFO)
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    sync = GatewayFaultSync(nats_url, args.admin, load_catalog()).start()
    stopped.wait()
    sync.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
