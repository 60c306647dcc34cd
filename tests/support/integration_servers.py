"""Real servers for the integration service's tests, on loopback: SMTP (aiosmtpd), S3 (moto) and a redirector."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from chassis.tooling.infra.ports import free_port


@dataclass
class SmtpSink:
    """An SMTP server that accepts one login and keeps every message it receives."""

    username: str
    password: str
    messages: list[Any] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    port: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.username
              and auth_data.password.decode() == self.password)
        self.logins.append(f"{mechanism}:{'ok' if ok else 'refused'}")
        # handled=False: aiosmtpd then answers 535 itself (True would leave the client waiting).
        return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(username: str, password: str) -> Iterator[SmtpSink]:
    """aiosmtpd on a free loopback port, with AUTH allowed without TLS (loopback only)."""
    from aiosmtpd.controller import Controller

    sink = SmtpSink(username, password, port=free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, authenticator=sink.authenticate,
                            auth_require_tls=False)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@contextmanager
def s3_server(bucket: str) -> Iterator[str]:
    """moto's standalone server (an implementation of the S3 REST API, in-process, on loopback) with one
    bucket; yields its endpoint URL. moto does not check signatures, so the signing itself is proven by
    AWS's test vectors in services/integration/tests/test_sigv4.py."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{bucket}", method="PUT"), timeout=10).close()
        yield endpoint
    finally:
        server.stop()


@dataclass
class Redirector:
    """An HTTP server on loopback answering every request with a redirect to `location`, counting them and
    keeping the Authorization headers it was sent."""

    location: str
    port: int = 0
    requests: int = 0
    authorizations: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def redirect_server(location: str, status: int = 302) -> Iterator[Redirector]:
    """A threaded http.server that redirects everything to `location` (which may be changed while it runs)."""
    import http.server
    import threading

    state = Redirector(location)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests += 1
            state.authorizations.append(self.headers.get("Authorization", ""))
            self.send_response(status)
            self.send_header("Location", state.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the test reads `state`
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
