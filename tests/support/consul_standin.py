"""A stand-in for the Consul HTTP API, for tests only. It is NOT Consul.

No Consul binary can be installed on the machines this project is built on, so the registry's
Consul backend is tested against this small server. It implements exactly the endpoints that
backend uses, with Consul's semantics for them:

- PUT /v1/agent/service/register    (name, id, address, port, tags, meta, checks[{grpc, interval,
                                     DeregisterCriticalServiceAfter}])
- PUT /v1/agent/service/deregister/<id>
- GET /v1/health/service/<name>?passing&index=&wait=   (blocking queries via X-Consul-Index)

Like a Consul agent, it runs each registered gRPC health check itself (a real grpc.health.v1
Check call at the given interval), marks the service critical when the check fails, and
deregisters it once it has been critical for DeregisterCriticalServiceAfter.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")


def parse_duration(text: str) -> float:
    """Consul duration ("500ms", "10s", "1m") in seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"bad duration {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


@dataclass
class _Service:
    definition: dict[str, Any]
    grpc_target: str | None
    interval: float
    deregister_after: float | None
    status: str = "critical"  # Consul starts checks critical until the first pass
    critical_since: float = field(default_factory=time.time)
    next_check: float = 0.0


class ConsulStandIn:
    """Threaded HTTP server speaking the subset of Consul's API described in the module docstring."""

    def __init__(self) -> None:
        self._services: dict[str, _Service] = {}
        self._index = 1
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self._threads = [threading.Thread(target=self.server.serve_forever, daemon=True),
                         threading.Thread(target=self._run_checks, daemon=True)]

    @property
    def address(self) -> str:
        """host:port, as CONSUL_HTTP_ADDR."""
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> ConsulStandIn:
        """Serve in background threads."""
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def _bump(self) -> None:
        with self._changed:
            self._index += 1
            self._changed.notify_all()

    def register(self, payload: dict[str, Any]) -> None:
        """PUT /v1/agent/service/register."""
        lower = {k.lower(): v for k, v in payload.items()}
        checks = lower.get("checks") or ([lower["check"]] if lower.get("check") else [])
        check = {k.lower(): v for k, v in checks[0].items()} if checks else {}
        service_id = lower.get("id") or lower["name"]
        deregister = check.get("deregistercriticalserviceafter")
        self._services[service_id] = _Service(
            definition={"ID": service_id, "Service": lower["name"], "Address": lower.get("address", ""),
                        "Port": int(lower.get("port", 0)), "Tags": lower.get("tags") or [],
                        "Meta": lower.get("meta") or {}},
            grpc_target=check.get("grpc"),
            interval=parse_duration(check.get("interval", "10s")),
            deregister_after=parse_duration(deregister) if deregister else None,
            status="critical" if check else "passing",
        )
        self._bump()

    def deregister(self, service_id: str) -> bool:
        """PUT /v1/agent/service/deregister/<id>."""
        found = self._services.pop(service_id, None) is not None
        self._bump()
        return found

    def health(self, name: str, passing: bool) -> list[dict[str, Any]]:
        """The body of GET /v1/health/service/<name>."""
        return [
            {"Node": {"Node": "standin", "Address": "127.0.0.1"}, "Service": dict(s.definition),
             "Checks": [{"Status": s.status, "ServiceID": s.definition["ID"]}]}
            for s in list(self._services.values())
            if s.definition["Service"] == name and (not passing or s.status == "passing")
        ]

    def _run_checks(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            for service_id, service in list(self._services.items()):
                if service.grpc_target is None or now < service.next_check:
                    continue
                service.next_check = now + service.interval
                status = "passing" if self._grpc_serving(service.grpc_target) else "critical"
                if status != service.status:
                    service.status = status
                    service.critical_since = now
                    self._bump()
                if (status == "critical" and service.deregister_after is not None
                        and now - service.critical_since >= service.deregister_after):
                    self.deregister(service_id)
            self._stop.wait(0.05)

    @staticmethod
    def _grpc_serving(target: str) -> bool:
        address, _, service = target.partition("/")
        try:
            with grpc.insecure_channel(address) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=1)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _reply(self, status: int, body: Any, index: int | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if index is not None:
                    self.send_header("X-Consul-Index", str(index))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                path = urlparse(self.path).path
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if path == "/v1/agent/service/register":
                    standin.register(json.loads(raw or b"{}"))
                    self._reply(200, True)
                elif path.startswith("/v1/agent/service/deregister/"):
                    found = standin.deregister(path.rsplit("/", 1)[1])
                    self._reply(200 if found else 404, found)
                else:
                    self._reply(404, f"the Consul stand-in does not implement PUT {path}")

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query, keep_blank_values=True)
                if not url.path.startswith("/v1/health/service/"):
                    self._reply(404, f"the Consul stand-in does not implement GET {url.path}")
                    return
                name = url.path.rsplit("/", 1)[1]
                passing = "passing" in query and query["passing"][0] not in ("0", "false")
                wanted = int(query.get("index", ["0"])[0] or 0)
                wait = parse_duration(query["wait"][0]) if "wait" in query else 300.0
                deadline = time.time() + wait
                with standin._changed:
                    while wanted and standin._index <= wanted and not standin._stop.is_set():
                        remaining = deadline - time.time()
                        if remaining <= 0:
                            break
                        standin._changed.wait(remaining)
                    index = standin._index
                self._reply(200, standin.health(name, passing), index)

        return Handler
