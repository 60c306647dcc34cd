"""The gateway's limits (chassis.tooling.gateway_limits) against real slow, idle, numerous and oversized clients.

Every client here is a raw socket, so the test controls exactly when each byte goes out, and
every loop is bounded. Timeouts are shortened for the test through the same GatewayLimits the
real gateway uses; body limits keep their production values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_backend import AgentBackend

from chassis.paths import DESCRIPTOR_SET
from chassis.tooling.catalog import Catalog, load_catalog
from chassis.tooling.envoy_config import build_envoy_config
from chassis.tooling.gateway_limits import GATEWAY_LIMITS, MIB, BodyClass, GatewayLimits
from chassis.tooling.infra.envoy import EnvoyProcess, validate_config
from chassis.tooling.infra.ports import free_port

REGISTER = "/protomesh.agent.v1.AgentService/RegisterAgent"
BIG_REGISTER = BodyClass("test-large", 4 * MIB, (REGISTER,))
"""A test class on a method the recording backend answers, to see a lifted limit reach a replica."""

LIMITS = dataclasses.replace(
    GATEWAY_LIMITS,
    body_classes=(*GATEWAY_LIMITS.body_classes, BIG_REGISTER),
    request_headers_timeout=2.0,
    request_timeout=4.0,
    idle_timeout=2.0,
    drain_timeout=1.0,
    max_connections=16,
)
HUGE = 100 * MIB


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(DESCRIPTOR_SET)


@pytest.fixture(scope="module")
def backend() -> Iterator[AgentBackend]:
    started = AgentBackend("limits").start()
    yield started
    started.stop()


def start(catalog: Catalog, backend: AgentBackend, work_dir: Path, limits: GatewayLimits = LIMITS) -> EnvoyProcess:
    # Limits alone: the recording backend has no chassis interceptor (credentials: test_gateway_auth.py).
    config = build_envoy_config(catalog, {"agent": [backend.address]}, listen_port=free_port(),
                                admin_port=free_port(), descriptor_set=DESCRIPTOR_SET, limits=limits,
                                verify_callers=False)
    validate_config(config, work_dir)
    gateway = EnvoyProcess(config, work_dir / "envoy")
    gateway.start()
    return gateway


@pytest.fixture(scope="module")
def gateway(catalog: Catalog, backend: AgentBackend,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyProcess]:
    envoy = start(catalog, backend, tmp_path_factory.mktemp("limits"))
    yield envoy
    envoy.stop()


# -- a raw HTTP/1 client ---------------------------------------------------------------------------


def connect(gateway: EnvoyProcess, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection((gateway.host, gateway.port), timeout=timeout)


def head(method: str, path: str, *, length: int | None = None, chunked: bool = False, version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: gateway", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Answer:
    """A parsed HTTP/1 response: status, headers, JSON body."""

    def __init__(self, raw: bytes) -> None:
        top, _, body = raw.partition(b"\r\n\r\n")
        status_line, *header_lines = top.decode(errors="replace").split("\r\n")
        self.version, self.status = status_line.split(" ")[0], int(status_line.split(" ")[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
        self.body: Any = json.loads(body) if body and self.headers.get("content-type") == "application/json" else body


def read_answer(sock: socket.socket, deadline: float = 10.0) -> Answer | None:
    """The response on sock, read until its Content-Length is complete or the peer closes; None if nothing came."""
    sock.settimeout(deadline)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            top, sep, body = data.partition(b"\r\n\r\n")
            length = [int(line.split(b":")[1]) for line in top.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")]
            if sep and length and len(body) >= length[0]:
                break
    except ConnectionResetError:
        pass
    return Answer(data) if data else None


def closed_by_peer(sock: socket.socket, wait: float) -> bool:
    """Whether the gateway closes sock (EOF or reset) within `wait` seconds, reading and discarding what comes."""
    sock.settimeout(wait)
    deadline = time.monotonic() + wait
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return False


def send_streamed(sock: socket.socket, total: int, *, chunked: bool, piece: int = 64 * 1024) -> int:
    """Send `total` bytes of one JSON string body (never held whole in memory); return bytes sent before refusal."""
    sent = 0
    filler = b"a" * piece
    try:
        for i in range(total // piece):
            data = (b'{"name":"' + filler[9:]) if i == 0 else filler
            sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data)
            sent += len(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for pid {pid}")


# -- body size -------------------------------------------------------------------------------------


def test_a_declared_oversized_body_is_413_before_a_byte_of_it_is_sent(gateway: EnvoyProcess,
                                                                      backend: AgentBackend) -> None:
    calls = len(backend.servicer.calls)
    with connect(gateway) as sock:
        started = time.monotonic()
        sock.sendall(head("PUT", "/v1/agents/a1", length=HUGE))  # headers only: the body never comes
        answer = read_answer(sock)
        elapsed = time.monotonic() - started
    print(f"413 for a declared {HUGE} byte body after {elapsed * 1000:.1f} ms")
    assert answer is not None and answer.status == 413
    assert answer.body["code"] == 8  # RESOURCE_EXHAUSTED, as google.rpc maps 413
    assert "request body too large" in answer.body["message"]
    assert f"at most {GATEWAY_LIMITS.max_request_bytes} bytes" in answer.body["message"]
    assert len(backend.servicer.calls) == calls, "nothing reaches a replica"


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_four_streamed_100_mib_bodies_get_413_and_envoy_memory_stays_bounded(
    catalog: Catalog, backend: AgentBackend, tmp_path: Path, chunked: bool
) -> None:
    gateway = start(catalog, backend, tmp_path)  # its own Envoy, so its peak memory is this test's alone
    try:
        assert gateway.pid is not None
        before = rss_mib(gateway.pid)
        calls = len(backend.servicer.calls)
        answers: list[Answer | None] = []
        sent: list[int] = []

        def upload() -> None:
            with connect(gateway, timeout=30) as sock:
                sock.sendall(head("POST", "/v1/agents", chunked=chunked, length=None if chunked else HUGE))
                sent.append(send_streamed(sock, HUGE, chunked=chunked))
                answers.append(read_answer(sock))

        started = time.monotonic()
        uploads = [threading.Thread(target=upload) for _ in range(4)]
        for thread in uploads:
            thread.start()
        for thread in uploads:
            thread.join(timeout=120)
        elapsed = time.monotonic() - started
        after, peak = rss_mib(gateway.pid), rss_mib(gateway.pid, "VmHWM")
        print(f"4 x {HUGE >> 20} MiB ({'chunked' if chunked else 'content-length'}): Envoy RSS {before:.0f} MiB "
              f"before, peak {peak:.0f} MiB, {after:.0f} MiB after; bytes sent before refusal {sorted(sent)}; "
              f"{elapsed:.2f}s")
        assert len(answers) == 4 and all(a is not None and a.status == 413 for a in answers), answers
        assert len(backend.servicer.calls) == calls, "nothing reaches a replica"
        assert peak - before < 64, f"Envoy grew from {before:.0f} to {peak:.0f} MiB"
        assert max(sent) < HUGE // 2, "the gateway must stop reading long before the end of the body"
    finally:
        gateway.stop()


def test_a_route_class_lifts_the_limit_for_its_methods_only(gateway: EnvoyProcess, backend: AgentBackend) -> None:
    name = "x" * (2 * MIB)
    body = json.dumps({"name": name, "type": "echo"}).encode()
    with connect(gateway) as sock:  # RegisterAgent is in the 4 MiB test class: served
        sock.sendall(head("POST", "/v1/agents", length=len(body)) + body)
        answer = read_answer(sock)
    assert answer is not None and answer.status == 200, answer and answer.body
    assert len(answer.body["agent"]["name"]) == len(name)

    with connect(gateway) as sock:  # UpdateAgent keeps the 1 MiB default
        sock.sendall(head("PUT", "/v1/agents/a1", length=len(body)) + body)
        answer = read_answer(sock)
    assert answer is not None and answer.status == 413

    too_big = 5 * MIB  # beyond the class's own limit
    with connect(gateway) as sock:
        sock.sendall(head("POST", "/v1/agents", length=too_big))
        answer = read_answer(sock)
    assert answer is not None and answer.status == 413


def test_the_declared_payload_routes_accept_more_than_the_default(gateway: EnvoyProcess) -> None:
    # No context replica runs here: a body that passes the gateway's limit meets "no healthy upstream".
    two_mib = json.dumps({"name": "l", "layer_type": "t", "data": {"k": "v" * (2 * MIB)}}).encode()
    with connect(gateway) as sock:
        sock.sendall(head("POST", "/v1/contexts/c1/layers", length=len(two_mib)) + two_mib)
        answer = read_answer(sock)
    assert answer is not None and answer.status == 503, "2 MiB passes the payload class's limit"
    with connect(gateway) as sock:
        sock.sendall(head("POST", "/v1/contexts/c1/layers", length=9 * MIB))
        answer = read_answer(sock)
    assert answer is not None and answer.status == 413
    with connect(gateway) as sock:
        sock.sendall(head("POST", "/v1/contexts", length=len(two_mib)))
        answer = read_answer(sock)
    assert answer is not None and answer.status == 413, "CreateContext keeps the default"


# -- slow and idle clients -------------------------------------------------------------------------


def test_slowloris_headers_are_cut_off_by_request_headers_timeout(gateway: EnvoyProcess) -> None:
    with connect(gateway) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: gateway\r\n")
        lines = 0
        closed = False
        for lines in range(1, 11):  # a header line a second, 10 at most
            if closed_by_peer(sock, 1.0):
                closed = True
                break
            try:
                sock.sendall(f"X-Slow-{lines}: {'z' * 10}\r\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        elapsed = time.monotonic() - started
    print(f"slowloris closed after {elapsed:.2f}s and {lines} header lines "
          f"(request_headers_timeout {LIMITS.request_headers_timeout}s)")
    assert closed, "a client dribbling headers must be disconnected"
    assert lines < 10


def test_a_slow_body_is_cut_off_by_request_timeout(gateway: EnvoyProcess, backend: AgentBackend) -> None:
    calls = len(backend.servicer.calls)
    with connect(gateway) as sock:
        started = time.monotonic()
        sock.sendall(head("POST", "/v1/agents", length=100) + b'{"name":"')
        answer = None
        for _ in range(20):  # a byte every half second, 20 at most
            time.sleep(0.5)
            try:
                sock.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                break
            sock.settimeout(0.01)
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    break
            except TimeoutError:
                continue
        answer = read_answer(sock, deadline=5)
        elapsed = time.monotonic() - started
    print(f"slow body answered after {elapsed:.2f}s: {answer.status if answer else 'closed'}")
    assert answer is None or answer.status == 408
    assert elapsed < 10
    assert len(backend.servicer.calls) == calls


def test_idle_connections_are_closed(gateway: EnvoyProcess) -> None:
    socks = [connect(gateway) for _ in range(10)]
    used = connect(gateway)  # one that made a request and then went quiet
    try:
        used.sendall(b"GET /health/live HTTP/1.1\r\nHost: gateway\r\n\r\n")
        first = read_answer(used)
        assert first is not None and first.status == 200
        started = time.monotonic()
        # A connection that never sent a request is closed at the idle timeout; one that did is
        # first told (Connection: close on HTTP/1, GOAWAY on HTTP/2), then closed after the drain.
        bound = LIMITS.idle_timeout + LIMITS.drain_timeout + 3
        closed = [closed_by_peer(s, max(bound - (time.monotonic() - started), 0.01)) for s in [*socks, used]]
        print(f"11 idle connections: {sum(closed)} closed within {time.monotonic() - started:.2f}s "
              f"(idle_timeout {LIMITS.idle_timeout}s, drain_timeout {LIMITS.drain_timeout}s)")
        assert all(closed)
    finally:
        for sock in [*socks, used]:
            sock.close()


def test_connections_beyond_the_limit_are_refused(gateway: EnvoyProcess) -> None:
    held: list[socket.socket] = []
    try:
        for _ in range(LIMITS.max_connections):
            held.append(connect(gateway))
        time.sleep(0.3)
        alive = [not closed_by_peer(s, 0.05) for s in held]
        assert all(alive), f"{alive.count(False)} of the first {LIMITS.max_connections} connections were dropped"
        with connect(gateway) as extra:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                extra.sendall(b"GET /health/live HTTP/1.1\r\nHost: gateway\r\n\r\n")
            refused = closed_by_peer(extra, 2.0)
        assert refused, "the connection over the limit must be closed unanswered"
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)  # Envoy notices the closed ones
    with connect(gateway) as again:
        again.sendall(b"GET /health/live HTTP/1.1\r\nHost: gateway\r\n\r\n")
        answer = read_answer(again)
    assert answer is not None and answer.status == 200, "below the limit again, connections are served"


# -- HTTP/1.0 --------------------------------------------------------------------------------------


def test_http_1_0_is_served(gateway: EnvoyProcess) -> None:
    with connect(gateway) as sock:
        sock.sendall(b"GET /health/live HTTP/1.0\r\n\r\n")  # no Host header, as HTTP/1.0 allows
        answer = read_answer(sock)
        assert answer is not None and answer.status == 200
        assert answer.version == "HTTP/1.0"
        assert answer.body == {"state": "HEALTH_STATE_SERVING"}
        assert closed_by_peer(sock, 2.0), "HTTP/1.0 without keep-alive: one request per connection"
    body = json.dumps({"name": "old-client", "type": "echo"}).encode()
    with connect(gateway) as sock:
        sock.sendall(head("POST", "/v1/agents", length=len(body), version="1.0") + body)
        answer = read_answer(sock)
    assert answer is not None and answer.status == 200 and answer.body["agent"]["name"] == "old-client"


# -- the declaration -------------------------------------------------------------------------------


def test_a_body_class_naming_a_method_the_contracts_lack_is_refused(catalog: Catalog) -> None:
    typo = BodyClass("typo", 2 * MIB, ("/protomesh.agent.v1.AgentService/RegisterAgents",))
    with pytest.raises(ValueError, match="RegisterAgents"):
        build_envoy_config(catalog, {}, listen_port=1, admin_port=2, descriptor_set=DESCRIPTOR_SET,
                           limits=dataclasses.replace(GATEWAY_LIMITS, body_classes=(typo,)))


def test_every_declared_payload_method_carries_a_body(catalog: Catalog) -> None:
    # The classes exist for bodies: a method without one in its HTTP rules has no business in them.
    methods = {m.grpc_path: m for m in catalog.methods()}
    for body_class in GATEWAY_LIMITS.body_classes:
        for path in body_class.methods:
            assert any(rule.body for rule in methods[path].http_rules), path
