"""No identity secret leaks: after flows that issued every kind of them, through the gateway.

Passwords (the admin's, a user's old and new), client secrets, API keys (created and rotated), refresh
tokens, authorization codes, device codes and access tokens are collected as they are issued. Every
HTTP response this module received is recorded (body and headers): each secret may appear only in the
one response that issued it. Then no log file of the mesh, no stored trace span and no column of any
table of the identity schema (its outbox included), dumped as text, holds any of them, in clear, hex or
base64. Modelled on test_integration_rest.py::test_no_secret_in_any_response_log_or_column.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from chassis.tooling.mesh_testing import eventually
from chassis.tooling.supervisor import Mesh
from tests.e2e.identity_support import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    approve_device,
    authorize,
    base_url,
    device_login,
    first,
    identity_call,
    identity_mesh,
    jwt_parts,
    poll_device_token,
    redirect_params,
    start_device_flow,
    submit_form,
    token_request,
)

REDIRECT_URI = "http://127.0.0.1:8768/callback"


@dataclass
class Exchange:
    """One HTTP exchange as the client saw it."""

    url: str
    status: int
    text: str


@dataclass
class Ledger:
    """Every response received, and every secret with the response that issued it."""

    exchanges: list[Exchange] = field(default_factory=list)
    secrets: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    """secret -> (what it is, index of its issuing exchange; None: never answered, like a password)."""

    def issued(self, secret: str, what: str) -> None:
        """`secret` came in the last response received."""
        assert secret, f"no {what} was issued"
        self.secrets[secret] = (what, len(self.exchanges) - 1)

    def known(self, secret: str, what: str) -> None:
        """`secret` was chosen by the client (a password): no response may ever hold it."""
        self.secrets[secret] = (what, None)


LEDGER = Ledger()


@pytest.fixture(scope="module", autouse=True)
def recorded() -> Iterator[None]:
    """Record every response any requests session of this module receives."""
    original = requests.Session.send

    def send(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = original(self, request, **kwargs)
        head = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        LEDGER.exchanges.append(Exchange(str(request.url), response.status_code, f"{head}\n\n{response.text}"))
        return response

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(requests.Session, "send", send)
        yield


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    # Every call traced (not the local default's sample): the secret scan must see every call's spans.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OTEL_TRACES_SAMPLER", "always_on")
        with identity_mesh("agent") as started:
            yield started


@pytest.fixture(scope="module")
def admin(mesh: Mesh) -> dict[str, Any]:
    """The admin logged in by the device flow: its device code and refresh token are issued here."""
    LEDGER.known(ADMIN_PASSWORD, "the admin's password")
    grant = start_device_flow(mesh, scope="openid email offline_access")
    LEDGER.issued(grant.device_code, "a device code")
    approve_device(mesh, grant, ADMIN_EMAIL, ADMIN_PASSWORD)
    token = poll_device_token(mesh, grant)
    LEDGER.issued(token["refresh_token"], "a refresh token")
    LEDGER.issued(token["access_token"], "an access token")
    return token


def test_flows_that_issue_every_kind_of_secret(mesh: Mesh, admin: dict[str, Any]) -> None:
    bearer = admin["access_token"]
    # A confidential client, its secret, then client credentials with it.
    registered = identity_call(mesh, "RegisterClient", {
        "name": "secrets-test", "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "scopes": ["openid", "email", "offline_access", "mesh"], "roles": ["ROLE_MEMBER"]}, token=bearer)
    client_id, client_secret = first(registered, "client_id"), first(registered, "client_secret")
    LEDGER.issued(client_secret, "a client secret")
    service = token_request(mesh, {"grant_type": "client_credentials", "scope": "mesh"},
                            auth=(client_id, client_secret)).json()
    LEDGER.issued(service["access_token"], "an access token")

    # The authorization code flow: the code (in the redirect), refresh tokens, a rotation and a revocation.
    oauth = OAuth2Session(client_id, client_secret, scope="openid email offline_access", redirect_uri=REDIRECT_URI,
                          code_challenge_method="S256")
    verifier = generate_token(48)
    url, state = oauth.create_authorization_url(base_url(mesh) + "/oauth2/authorize", code_verifier=verifier,
                                                nonce=generate_token(16))
    answer = authorize(mesh, requests.Session(), url)
    LEDGER.issued(redirect_params(answer)["code"], "an authorization code")
    token = oauth.fetch_token(base_url(mesh) + "/oauth2/token", authorization_response=answer.headers["Location"],
                              state=state, code_verifier=verifier)
    LEDGER.issued(token["refresh_token"], "a refresh token")
    LEDGER.issued(token["access_token"], "an access token")
    renewed = oauth.refresh_token(base_url(mesh) + "/oauth2/token", refresh_token=token["refresh_token"])
    LEDGER.issued(renewed["refresh_token"], "a refresh token")
    LEDGER.issued(renewed["access_token"], "an access token")
    assert oauth.introspect_token(base_url(mesh) + "/oauth2/introspect",
                                  token=renewed["refresh_token"]).json()["active"] is True
    assert oauth.revoke_token(base_url(mesh) + "/oauth2/revoke", token=renewed["refresh_token"]).status_code == 200

    # A user: the password chosen, a failed login that must not echo it back, a change of password.
    password, new_password = f"first-{uuid.uuid4().hex}", f"second-{uuid.uuid4().hex}"
    LEDGER.known(password, "a user's password")
    LEDGER.known(new_password, "a user's new password")
    LEDGER.known(f"wrong-{password}", "a mistyped password")
    email = f"secret-keeper-{uuid.uuid4().hex[:8]}@example.com"
    user_id = first(identity_call(mesh, "CreateUser", {"email": email, "display_name": "Secret Keeper",
                                                       "password": password}, token=bearer), "user_id")
    identity_call(mesh, "AddMember", {"organization_id": jwt_parts(bearer)[1]["org"], "user_id": user_id,
                                      "role": "ROLE_MEMBER"}, token=bearer)
    session = requests.Session()
    failed = submit_form(session, session.get(oauth.create_authorization_url(
        base_url(mesh) + "/oauth2/authorize", code_verifier=generate_token(48))[0], timeout=10),
        email=email, password=f"wrong-{password}")
    assert failed.status_code not in (302, 303)
    user = device_login(mesh, email, password)
    LEDGER.issued(user["refresh_token"], "a refresh token")
    identity_call(mesh, "ChangePassword", {"user_id": user_id, "old_password": password,
                                           "new_password": new_password}, token=user["access_token"])

    # API keys: created, used in both places, rotated (a new secret), revoked.
    created = identity_call(mesh, "CreateApiKey", {"name": "secrets-test", "scopes": ["mesh"]}, token=bearer)
    key_id, api_key = first(created, "api_key_id"), created["secret"]
    LEDGER.issued(api_key, "an API key")
    for header in ({"x-api-key": api_key}, {"authorization": f"ApiKey {api_key}"}):
        assert requests.get(base_url(mesh) + "/v1/agents", headers=header, timeout=10).status_code == 200
    rotated = identity_call(mesh, "RotateApiKey", {"api_key_id": key_id, "overlap": "60s"}, token=bearer)
    LEDGER.issued(rotated["secret"], "an API key")
    assert requests.get(base_url(mesh) + "/v1/agents", headers={"x-api-key": rotated["secret"]},
                        timeout=10).status_code == 200
    identity_call(mesh, "RevokeApiKey", {"api_key_id": first(rotated, "api_key_id")}, token=bearer)

    # Everything that lists or shows what was issued.
    for name, fields in (("ListClients", {}), ("GetClient", {"client_id": client_id}), ("ListApiKeys", {}),
                         ("GetApiKey", {"api_key_id": key_id}), ("ListUsers", {}), ("GetUser", {"user_id": user_id}),
                         ("ListSigningKeys", {})):
        identity_call(mesh, name, fields, token=bearer)
    assert requests.get(base_url(mesh) + "/oauth2/userinfo", headers={"authorization": f"Bearer {bearer}"},
                        timeout=10).status_code == 200
    assert {what for what, _ in LEDGER.secrets.values()} == {
        "the admin's password", "a user's password", "a user's new password", "a mistyped password",
        "a device code", "an authorization code", "a refresh token", "an access token", "a client secret",
        "an API key"}


def forms(secret: str) -> tuple[str, ...]:
    """The secret as it is, hex and base64 (a log that encodes it still leaks it)."""
    return secret, secret.encode().hex(), base64.b64encode(secret.encode()).decode()


def test_no_secret_in_any_other_response(admin: dict[str, Any]) -> None:
    assert len(LEDGER.exchanges) > 30
    for secret, (what, issuing) in LEDGER.secrets.items():
        if issuing is not None:  # the recording works: the secret is where it was issued
            assert secret in LEDGER.exchanges[issuing].text, f"{what} is not in the answer that issued it"
        for index, exchange in enumerate(LEDGER.exchanges):
            if index != issuing:
                assert not any(f in exchange.text for f in forms(secret)), \
                    f"{what} ({secret[:4]}...) is in the answer to {exchange.url} ({exchange.status})"


def test_no_secret_in_any_log_trace_or_column(mesh: Mesh) -> None:
    def logs() -> str:
        return "\n".join(p.read_bytes().decode(errors="replace") for p in mesh.log_dir.rglob("*") if p.is_file())

    def traces() -> str:
        folder = mesh.state_dir / "traces"
        return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())

    # The last calls' log lines and spans are written asynchronously.
    eventually(lambda: "RevokeApiKey" in traces() and "RevokeApiKey" in logs(), timeout=20, interval=0.5,
               what="the last call's span and log line")
    log_text, trace_text = logs(), traces()
    with psycopg.connect(mesh.database_url) as conn:
        tables = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables"
                                             " WHERE table_schema = 'identity'").fetchall()]
        rows = [r[0] for table in tables
                for r in conn.execute(f'SELECT t::text FROM identity."{table}" t').fetchall()]
    assert {"users", "refresh_tokens", "oauth_clients"} <= set(tables), tables
    column_text = "\n".join(rows)
    assert len(rows) > 10
    for secret, (what, _) in LEDGER.secrets.items():
        for form in forms(secret):
            assert form not in log_text, f"a log holds {what} ({secret[:4]}...)"
            assert form not in trace_text, f"a trace holds {what} ({secret[:4]}...)"
            assert form not in column_text, f"a column of the identity schema holds {what} ({secret[:4]}...)"
    # Access tokens: their signature is what makes them usable; not even that part may be kept.
    for secret, (what, _) in LEDGER.secrets.items():
        if what == "an access token":
            signature = secret.split(".")[2]
            assert signature not in log_text and signature not in trace_text and signature not in column_text
