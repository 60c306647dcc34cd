"""The load generator: a fixed number of requests in flight, warm-up then a measured window, one JSON result.

It runs in a process of its own (`python -m bench.loadgen SPEC.json`), so the servers it measures
and the benchmark's own book-keeping never share its event loop. Both sides of every comparison
are driven by this same code with the same concurrency and duration.

Why a Python generator and not wrk/h2load: everything the benchmark needs is in the venv. It is
kept lean so it takes as little of the 2 cores from the servers as it can: uvloop, gRPC calls
with pre-serialised requests and undecoded responses (no protobuf work on the client), and a
small HTTP/1.1 keep-alive client on httptools (the C parser uvicorn uses) instead of aiohttp,
one connection per in-flight request. Its CPU time is reported with every result.

Closed loop: each of `concurrency` workers sends its next request when the previous answer
arrives; latency is measured per request from send to complete answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import resource
import sys
import time
import uuid
from array import array
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httptools

Call = Callable[[], Awaitable[str]]
"""One request; returns the operation's name (for per-operation statistics) or raises on failure."""


class RequestFailed(Exception):
    """An answer that is not a success (HTTP >= 400, or a gRPC status other than OK)."""


# --- statistics --------------------------------------------------------------------------------


def percentile(sorted_values: list[float] | array, fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def summarize(latencies: list[float] | array) -> dict[str, float]:
    """count, p50/p90/p99/max and mean of latencies given in seconds, reported in milliseconds."""
    ordered = sorted(latencies)
    count = len(ordered)
    return {
        "count": count,
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 3),
        "p90_ms": round(percentile(ordered, 0.90) * 1000, 3),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 3),
        "max_ms": round((ordered[-1] if ordered else 0.0) * 1000, 3),
        "mean_ms": round((sum(ordered) / count if count else 0.0) * 1000, 3),
    }


@dataclass
class Recorder:
    """Latencies of requests completed inside the measured window, per operation; errors always."""

    measuring: bool = False
    latencies: dict[str, array] = field(default_factory=dict)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def record(self, op: str, seconds: float) -> None:
        if self.measuring:
            found = self.latencies.get(op)
            if found is None:
                found = self.latencies[op] = array("d")
            found.append(seconds)

    def error(self, exc: BaseException) -> None:
        if self.measuring:
            self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{type(exc).__name__}: {exc}"[:300])


# --- HTTP/1.1 keep-alive client ----------------------------------------------------------------


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time, parsed by httptools."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._body: list[bytes] = []
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, host, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError(f"connection closed: {exc}"))

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_exception(exc)
            self.close()

    def on_message_begin(self) -> None:
        self._body = []

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if not self._parser.should_keep_alive():
            self.closed = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self._parser.get_status_code(), b"".join(self._body)))

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        assert self._transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(raw)
        return await self._waiter

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()


def http_request(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> bytes:
    """The bytes of one request (JSON body when given; `headers`, e.g. the bearer token, on every one)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: protomesh-bench\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    if body is None:
        return (head + "\r\n").encode()
    data = json.dumps(body, separators=(",", ":")).encode()
    return (head + f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data


class HttpClient:
    """A worker's own connection, reopened when the server closes it."""

    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self.host, self.port = host, int(port)
        self._conn: HttpConnection | None = None

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        if self._conn is None or self._conn.closed:
            self._conn = await HttpConnection.open(self.host, self.port)
        status, body = await self._conn.request(raw)
        if status >= 400:
            raise RequestFailed(f"HTTP {status}: {body[:200]!r}")
        return status, body

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


# --- workloads ---------------------------------------------------------------------------------


def grpc_get_workload(spec: dict[str, Any], channels: list[grpc.aio.Channel]) -> Callable[[int], Call]:
    """Unary calls of one method with pre-serialised requests, responses left as bytes."""
    payloads = [bytes.fromhex(p) for p in spec["payloads"]]
    method = spec["method"]
    op = spec.get("op", method.rpartition("/")[2])
    metadata = tuple((name.lower(), value) for name, value in spec.get("headers", {}).items())

    def for_worker(index: int) -> Call:
        call = channels[index % len(channels)].unary_unary(method)  # no (de)serializers: bytes in and out
        cycle = itertools.cycle(payloads[index % len(payloads):] + payloads[: index % len(payloads)])

        async def one() -> str:
            await call(next(cycle), timeout=10, metadata=metadata)
            return op

        return one

    return for_worker


def http_get_workload(spec: dict[str, Any], targets: list[str], clients: list[HttpClient]) -> Callable[[int], Call]:
    """GETs of a list of paths."""
    requests = [http_request("GET", path, headers=spec.get("headers")) for path in spec["paths"]]
    op = spec.get("op", "GET")

    def for_worker(index: int) -> Call:
        client = HttpClient(targets[index % len(targets)])
        clients.append(client)
        cycle = itertools.cycle(requests[index % len(requests):] + requests[: index % len(requests)])

        async def one() -> str:
            await client.send(next(cycle))
            return op

        return one

    return for_worker


def crud_workload(spec: dict[str, Any], targets: list[str], clients: list[HttpClient]) -> Callable[[int], Call]:
    """The Agent service's CRUD mix over REST: register, get x3, update, list, deregister, per cycle."""
    agent_type = spec.get("agent_type", "calculator")
    run = uuid.uuid4().hex[:6]
    headers: dict[str, str] = spec.get("headers", {})

    def for_worker(index: int) -> Call:
        client = HttpClient(targets[index % len(targets)])
        clients.append(client)
        state: dict[str, Any] = {"step": 0, "id": "", "n": 0}
        steps = ("create", "get", "get", "update", "list", "get", "delete")

        async def one() -> str:
            step = steps[state["step"]]
            if step == "create":
                state["n"] += 1
                _, body = await client.send(http_request("POST", "/v1/agents", {
                    "name": f"bench-{run}-{index}-{state['n']}", "type": agent_type,
                    "description": "created by the benchmark's CRUD mix", "labels": {"bench": "crud"}}, headers))
                agent = json.loads(body)["agent"]
                state["id"] = agent.get("agentId") or agent["agent_id"]
            elif step == "get":
                await client.send(http_request("GET", f"/v1/agents/{state['id']}", headers=headers))
            elif step == "update":
                await client.send(http_request("PUT", f"/v1/agents/{state['id']}",
                                               {"description": f"updated {random.random():.6f}"}, headers))
            elif step == "list":
                await client.send(http_request("GET", "/v1/agents?page_size=10", headers=headers))
            else:
                await client.send(http_request("DELETE", f"/v1/agents/{state['id']}", headers=headers))
            state["step"] = (state["step"] + 1) % len(steps)
            return step

        return one

    return for_worker


# --- the run -----------------------------------------------------------------------------------


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _worker(call: Call, recorder: Recorder, stop: asyncio.Event) -> None:
    clock = time.perf_counter
    while not stop.is_set():
        started = clock()
        try:
            op = await call()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            recorder.error(exc)
            await asyncio.sleep(0.01)  # a failing target is not hammered in a tight loop
            continue
        recorder.record(op, clock() - started)


def _tls_credentials(tls: dict[str, str]) -> grpc.ChannelCredentials:
    """Client credentials from a spec's `tls` files (a mesh certificate), read once before the run."""
    return grpc.ssl_channel_credentials(*(Path(tls[k]).read_bytes() for k in ("ca", "key", "cert")))


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Drive the targets as the spec says; the result as a JSON-able dict."""
    targets: list[str] = spec["targets"]
    concurrency = int(spec["concurrency"])
    workload = spec["workload"]
    channels: list[grpc.aio.Channel] = []
    clients: list[HttpClient] = []
    if spec["protocol"] == "grpc":
        options = [("grpc.use_local_subchannel_pool", 1)]
        tls = spec.get("tls")  # straight to mesh replicas: mTLS with a certificate of the trust domain
        if tls:
            credentials = _tls_credentials(tls)
            options.append(("grpc.ssl_target_name_override", tls["server_name"]))
            channels = [grpc.aio.secure_channel(t, credentials, options=options) for t in targets]
        else:
            channels = [grpc.aio.insecure_channel(t, options=options) for t in targets]
        for channel in channels:
            await asyncio.wait_for(channel.channel_ready(), 10)
        factory = grpc_get_workload(workload, channels)
    elif workload["kind"] == "crud":
        factory = crud_workload(workload, targets, clients)
    else:
        factory = http_get_workload(workload, targets, clients)
    recorder = Recorder()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_worker(factory(i), recorder, stop)) for i in range(concurrency)]
    try:
        await asyncio.sleep(float(spec["warmup"]))
        _say("measuring")  # the benchmark samples the servers' CPU time at these two lines
        cpu_before, started = _cpu_seconds(), time.perf_counter()
        recorder.measuring = True
        await asyncio.sleep(float(spec["duration"]))
        recorder.measuring = False
        elapsed, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_before
        _say("measured")
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            client.close()
        for channel in channels:
            await channel.close()
    every = array("d", itertools.chain.from_iterable(recorder.latencies.values()))
    if spec.get("latency_file"):
        with open(spec["latency_file"], "wb") as handle:  # noqa: ASYNC230  (after the run; nothing else waits)
            every.tofile(handle)  # raw seconds, so rounds of one comparison can be merged
    total = summarize(every)
    return {
        **total,
        "requests": total["count"],
        "elapsed_s": round(elapsed, 3),
        "throughput": round(total["count"] / elapsed, 1) if elapsed else 0.0,
        "errors": recorder.errors,
        "error_samples": recorder.error_samples,
        "generator_cpu_s": round(cpu, 3),
        "by_op": {op: summarize(values) for op, values in sorted(recorder.latencies.items())},
    }


def main(argv: list[str] | None = None) -> None:
    """`python -m bench.loadgen SPEC.json`: run the spec, print the result as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="a JSON file: protocol, targets, concurrency, warmup, duration, workload")
    args = parser.parse_args(argv)
    with open(args.spec) as handle:
        spec = json.load(handle)
    runner: Callable[[Awaitable[Any]], Any] = asyncio.run
    if spec.get("uvloop", True):
        with contextlib.suppress(ImportError):
            import uvloop

            runner = uvloop.run
    result = runner(run(spec))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
