"""The identity service in this process, with its OAuth endpoints on a real HTTP port, for test_oauth_*.

The issuer must be known before the replica starts (it is in every token and endpoint URL), so the
harness picks a free port for IDENTITY_HTTP_PORT and sets IDENTITY_ISSUER to it. HTTP calls use
`requests` (and Authlib's requests client) in worker threads: the replica runs on the test's event
loop, which a blocking call on it would stall.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import os
import re
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from argon2 import PasswordHasher
from joserfc import jwt
from joserfc.jwk import KeySet

from chassis.identity import Principal
from chassis.testing import InProcess
from protomesh.identity.v1 import client_service_pb2 as cpb
from protomesh.identity.v1 import identity_pb2
from protomesh.identity.v1.client_service_pb2_grpc import ClientServiceStub
from services.identity.deps import IdentityDeps
from tests.support.inprocess import build_service, serve_with_test_infra

ADMIN_EMAIL = "admin@protomesh.local"
ADMIN_PASSWORD = "correct horse battery staple 11"  # pragma: allowlist secret - fake credential, test input
REDIRECT_URI = "http://127.0.0.1:9/callback"
TIMEOUT = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def process_env(state_dir: Path) -> Iterator[None]:
    """What the identity replica reads from the process environment: its keys and the admin password."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IDENTITY_ENCRYPTION_KEY", base64.b64encode(os.urandom(32)).decode())
        patch.setenv("IDENTITY_APIKEY_PEPPER", base64.b64encode(os.urandom(32)).decode())
        patch.setenv("PROTOMESH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        patch.setenv("PROTOMESH_STATE_DIR", str(state_dir))
        # Authlib's client, like its server, refuses plain HTTP unless told: the test issuer is loopback.
        patch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
        yield


@dataclass
class Provider:
    """The served identity replica and how to reach its OAuth endpoints."""

    service: InProcess[IdentityDeps]
    issuer: str
    organization_id: str
    admin_id: str

    def url(self, path: str) -> str:
        return self.issuer + path

    @property
    def admin(self) -> Principal:
        """The bootstrap admin as a principal (owner of `local`, platform admin), for gRPC calls."""
        return Principal(subject=self.admin_id, kind="user", organization=self.organization_id,
                         roles=frozenset({"owner"}), scopes=frozenset({"mesh"}), platform_admin=True)

    def clients(self) -> ClientServiceStub:
        return self.service.stub(ClientServiceStub, principal=self.admin)

    async def register(self, **fields: Any) -> tuple[str, str]:
        """Register a client through ClientService; (client_id, secret or "")."""
        fields.setdefault("name", f"test-{uuid.uuid4().hex[:6]}")
        reply = await self.clients().RegisterClient(cpb.RegisterClientRequest(**fields))
        return reply.client.client_id, reply.client_secret

    async def add_user(self, email: str, password: str, role: str = "member", *, active: bool = True) -> str:
        """A user in the `local` organization, written straight to the tables (as UserService would)."""
        user_id = uuid.uuid4()
        async with self.service.replica.db.connection() as conn:
            await conn.execute("INSERT INTO users (id, email, display_name, password_hash, status) VALUES"
                               " (%s, %s, %s, %s, %s)", (user_id, email, email.split("@")[0],
                                                         PasswordHasher().hash(password),
                                                         "active" if active else "disabled"))
            await conn.execute("INSERT INTO memberships (organization_id, user_id, role) VALUES (%s, %s, %s)",
                               (self.organization_id, user_id, role))
        return str(user_id)

    async def sql(self, query: str, params: Any = ()) -> None:
        async with self.service.replica.db.connection() as conn:
            await conn.execute(query, params)

    def jwks(self) -> KeySet:
        return KeySet.import_key_set(requests.get(self.url("/oauth2/jwks"), timeout=TIMEOUT).json())

    def decode(self, token: str) -> jwt.Token:
        """A token verified against the published JWKS (RS256 only)."""
        return jwt.decode(token, self.jwks(), algorithms=["RS256"])


@contextlib.asynccontextmanager
async def serve_provider(config: pytest.Config, tmp: Path, env: Mapping[str, str] | None = None,
                         ) -> AsyncIterator[Provider]:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    variables = {"IDENTITY_HTTP_PORT": str(port), "IDENTITY_ISSUER": issuer,
                 "IDENTITY_BOOTSTRAP_FILE": str(tmp / "bootstrap.json"), **(env or {})}
    with process_env(tmp):
        async with serve_with_test_infra(config, build_service("services.identity"), nats=False,
                                         env=variables) as service:
            assert service.replica.http_port == port
            async with service.replica.db.connection() as conn:
                cur = await conn.execute("SELECT o.id::text, u.id::text FROM organizations o, users u"
                                         " WHERE o.name = 'local' AND u.email = %s", (ADMIN_EMAIL,))
                row = await cur.fetchone()
            assert row is not None
            yield Provider(service, issuer, row[0], row[1])


# --- OAuth helpers (synchronous: run them in a worker thread) ----------------------------------------

def pkce() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


_INPUT = re.compile(r"<input[^>]*\bname=\"([^\"]+)\"[^>]*\bvalue=\"([^\"]*)\"", re.I)


def hidden_fields(page: str) -> dict[str, str]:
    """The named inputs with a value on a page (the hidden fields of the login and device forms)."""
    return {html.unescape(k): html.unescape(v) for k, v in _INPUT.findall(page)}


def sign_in(session: requests.Session, authorization_url: str, email: str, password: str,
            headers: Mapping[str, str] | None = None) -> requests.Response:
    """GET the login page of an authorization URL and POST the credentials; the answer, not followed."""
    page = session.get(authorization_url, allow_redirects=False, timeout=TIMEOUT)
    assert page.status_code == 200, f"{page.status_code}: {page.text[:300]}"
    form = {**hidden_fields(page.text), "email": email, "password": password}
    base = f"{urlsplit(authorization_url).scheme}://{urlsplit(authorization_url).netloc}"
    return session.post(base + "/oauth2/authorize", data=form, headers=dict(headers or {}), allow_redirects=False,
                        timeout=TIMEOUT)


def location_params(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302, f"{response.status_code}: {response.text[:300]}"
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def token(provider: Provider, form: Mapping[str, str], auth: tuple[str, str] | None = None) -> requests.Response:
    return requests.post(provider.url("/oauth2/token"), data=dict(form), auth=auth, timeout=TIMEOUT)


def claims_header(value: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    return decoded


ROLE_MEMBER = identity_pb2.ROLE_MEMBER
