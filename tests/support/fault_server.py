"""A small HTTP API of our own that can be made slow, failing or healthy at will, on 127.0.0.1.

It stands in for an external system (an authentication provider or a payments API) in the
integration service's tests and in scripts/fault_demo. Modes:

- healthy: answers at once;
- slow: waits `delay` seconds before answering;
- failing: answers 500 and 503 in turn, and drops every third connection without answering.

Endpoints: GET /health; GET /v1/items/<id> (JSON, counts as an idempotent read);
POST /v1/charges (JSON echo of the body); POST /oauth/token (OAuth2 client credentials, checked
against `client_id`/`client_secret`); every /v1/ path requires `Authorization: Bearer <token>`
when `token` is set (the static token, or one the token endpoint issued). Requests are counted.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FaultServer:
    """The server, its mode and its counters; start() serves in a thread, stop() ends it."""

    def __init__(self, *, token: str = "", client_id: str = "", client_secret: str = "") -> None:
        self.mode = "healthy"
        self.delay = 0.0
        self.token = token
        self.client_id = client_id
        self.client_secret = client_secret
        self.issued: set[str] = set()
        self.requests: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self._failures = itertools.count()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on."""
        assert self._httpd is not None
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.port}"

    def set_mode(self, mode: str, delay: float = 0.0) -> None:
        """healthy, slow (with a delay) or failing."""
        assert mode in ("healthy", "slow", "failing")
        self.mode, self.delay = mode, delay

    def count(self, key: str) -> None:
        with self._lock:
            self.outcomes[key] += 1

    def start(self) -> FaultServer:
        """Listen on a free loopback port and serve in a daemon thread."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the counters instead
                pass

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                server.count(str(status))

            def _fault(self) -> bool:
                """Apply the mode; True when the request was answered (or dropped) by the fault."""
                if self.path == "/health" and server.mode != "failing":
                    return False
                if server.mode == "slow":
                    time.sleep(server.delay)
                    return False
                if server.mode == "failing":
                    n = next(server._failures)
                    if n % 3 == 2:
                        server.count("dropped")
                        self.close_connection = True
                        self.connection.close()
                        return True
                    self._reply(500 if n % 3 == 0 else 503, {"error": "injected failure"})
                    return True
                return False

            def _authorized(self) -> bool:
                if not server.token:
                    return True
                header = self.headers.get("Authorization", "")
                scheme, _, value = header.partition(" ")
                return scheme == "Bearer" and (value == server.token or value in server.issued)

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def do_GET(self) -> None:
                with server._lock:
                    server.requests[self.path.split("?")[0]] += 1
                if self._fault():
                    return
                path = urllib.parse.urlparse(self.path).path
                if path == "/health":
                    self._reply(200, {"status": "ok"})
                elif path.startswith("/v1/items/"):
                    if not self._authorized():
                        self._reply(401, {"error": "unauthorized"})
                    else:
                        self._reply(200, {"id": path.rsplit("/", 1)[1], "served_at": time.time()})
                else:
                    self._reply(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = self._body()
                with server._lock:
                    server.requests[self.path] += 1
                if self._fault():
                    return
                if self.path == "/oauth/token":
                    form = urllib.parse.parse_qs(body.decode())
                    if (form.get("client_id") == [server.client_id]
                            and form.get("client_secret") == [server.client_secret]
                            and form.get("grant_type") == ["client_credentials"]):
                        token = f"issued-{len(server.issued)}-{time.monotonic_ns()}"
                        server.issued.add(token)
                        self._reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})
                    else:
                        self._reply(401, {"error": "invalid_client"})
                elif self.path == "/v1/charges":
                    if not self._authorized():
                        self._reply(401, {"error": "unauthorized"})
                    else:
                        self._reply(200, {"charge": json.loads(body or b"{}"), "status": "succeeded"})
                else:
                    self._reply(404, {"error": "not found"})

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                """A client that gave up (its deadline passed) closes the socket mid-reply: not an error here."""

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fault-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


@contextmanager
def fault_server(**kwargs: Any) -> Iterator[FaultServer]:
    """A running FaultServer, stopped afterwards."""
    server = FaultServer(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()
