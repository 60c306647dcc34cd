"""The OAuth 2.1 / OIDC provider over its real HTTP listener: every grant, each refusal the RFCs name.

One identity replica per module (PostgreSQL, no NATS). Clients are registered through ClientService
over gRPC; the flows run over HTTP with `requests` and with Authlib's OAuth2Session, a client nobody
on this project wrote.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.discovery import OpenIDProviderMetadata

from services.identity.tests.oauth_harness import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    REDIRECT_URI,
    ROLE_MEMBER,
    TIMEOUT,
    Provider,
    location_params,
    pkce,
    serve_provider,
    sign_in,
    token,
)

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
USER_SCOPES = ["openid", "profile", "email", "offline_access", "mesh"]


@pytest.fixture(scope="module")
async def provider(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Provider]:
    async with serve_provider(pytestconfig, tmp_path_factory.mktemp("identity")) as served:
        yield served


@pytest.fixture(scope="module")
async def web_client(provider: Provider) -> tuple[str, str]:
    """A confidential client for the authorization code flow (+ refresh, introspection)."""
    return await provider.register(grant_types=["authorization_code", "refresh_token"], redirect_uris=[REDIRECT_URI],
                                   scopes=USER_SCOPES)


@pytest.fixture(scope="module")
async def public_client(provider: Provider) -> str:
    client_id, secret = await provider.register(
        grant_types=["authorization_code", "refresh_token", DEVICE], redirect_uris=[REDIRECT_URI],
        scopes=USER_SCOPES, public=True)
    assert secret == ""
    return client_id


def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A blocking HTTP flow, off the event loop the replica serves on."""
    return asyncio.to_thread(fn, *args, **kwargs)


def authorization_url(provider: Provider, client_id: str, challenge: str, **extra: str) -> str:
    request = requests.Request("GET", provider.url("/oauth2/authorize"), params={
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "scope": "openid mesh",
        "state": "st-" + secrets.token_hex(4), "code_challenge": challenge, "code_challenge_method": "S256", **extra})
    return str(request.prepare().url)


def code_for(provider: Provider, client_id: str, challenge: str, **extra: str) -> str:
    answer = sign_in(requests.Session(), authorization_url(provider, client_id, challenge, **extra), ADMIN_EMAIL,
                     ADMIN_PASSWORD)
    return location_params(answer)["code"]


# --- discovery and keys ----------------------------------------------------------------------------------

async def test_discovery_is_a_valid_openid_configuration(provider: Provider) -> None:
    document = (await run(requests.get, provider.url("/.well-known/openid-configuration"), timeout=TIMEOUT)).json()
    metadata = OpenIDProviderMetadata(document)
    metadata.validate()  # Authlib's checks of OIDC Discovery and RFC 8414, every field
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert document["issuer"] == provider.issuer
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert "password" not in document["grant_types_supported"]
    assert document["jwks_uri"] == provider.url("/oauth2/jwks")


async def test_jwks_publishes_public_rsa_keys_only(provider: Provider) -> None:
    keys = (await run(requests.get, provider.url("/oauth2/jwks"), timeout=TIMEOUT)).json()["keys"]
    assert len(keys) == 2  # the current key and the next one
    for key in keys:
        assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["kid"] and len(key["n"]) >= 342  # 2048 bits
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


# --- client credentials ----------------------------------------------------------------------------------

async def test_client_credentials_with_authlibs_client(provider: Provider) -> None:
    client_id, secret = await provider.register(grant_types=["client_credentials"], scopes=["mesh", "agents:read"],
                                                roles=[ROLE_MEMBER])
    assert secret.startswith("pmcs_")

    def flow() -> dict[str, Any]:
        session = OAuth2Session(client_id, secret, scope="mesh")
        fetched: dict[str, Any] = session.fetch_token(provider.url("/oauth2/token"), grant_type="client_credentials")
        return fetched

    answer = await run(flow)
    assert answer["token_type"].lower() == "bearer" and "refresh_token" not in answer
    decoded = await run(provider.decode, answer["access_token"])
    assert decoded.header["typ"] == "at+jwt" and decoded.header["kid"]
    claims = decoded.claims
    assert claims["sub"] == f"client:{client_id}" and claims["kind"] == "service"
    assert claims["aud"] == "protomesh" and claims["iss"] == provider.issuer and claims["scope"] == "mesh"
    assert claims["org"] == provider.organization_id and claims["roles"] == ["member"]
    assert claims["exp"] - claims["iat"] == 300 and claims["jti"]

    wrong = await run(token, provider, {"grant_type": "client_credentials"}, auth=(client_id, "pmcs_wrong"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    too_much = await run(token, provider, {"grant_type": "client_credentials", "scope": "admin"},
                         auth=(client_id, secret))
    assert too_much.status_code == 400 and too_much.json()["error"] == "invalid_scope"
    no_password_grant = await run(token, provider, {"grant_type": "password", "username": ADMIN_EMAIL,
                                                    "password": ADMIN_PASSWORD}, auth=(client_id, secret))
    assert no_password_grant.json()["error"] == "unsupported_grant_type"


# --- authorization code + PKCE + OIDC -----------------------------------------------------------------------

async def test_authorization_code_with_pkce_and_oidc_through_authlibs_client(
        provider: Provider, web_client: tuple[str, str]) -> None:
    client_id, secret = web_client
    nonce = secrets.token_hex(8)

    def flow() -> tuple[str, dict[str, Any], dict[str, Any]]:
        client = OAuth2Session(client_id, secret, scope="openid profile email offline_access mesh",
                               redirect_uri=REDIRECT_URI, code_challenge_method="S256")
        verifier = secrets.token_urlsafe(48)
        url, state = client.create_authorization_url(provider.url("/oauth2/authorize"), code_verifier=verifier,
                                                     nonce=nonce)
        answer = sign_in(requests.Session(), url, ADMIN_EMAIL, ADMIN_PASSWORD)
        assert location_params(answer)["state"] == state
        fetched = client.fetch_token(provider.url("/oauth2/token"), authorization_response=answer.headers["Location"],
                                     code_verifier=verifier)
        info = client.get(provider.url("/oauth2/userinfo"), timeout=TIMEOUT).json()
        return state, fetched, info

    _, tokens, info = await run(flow)
    access = (await run(provider.decode, tokens["access_token"])).claims
    assert access["sub"] == provider.admin_id and access["kind"] == "user" and access["client_id"] == client_id
    assert access["org"] == provider.organization_id and access["roles"] == ["owner"] and access["admin"] is True
    id_token = await run(provider.decode, tokens["id_token"])
    assert id_token.claims["aud"] == client_id and id_token.claims["nonce"] == nonce
    assert id_token.claims["iss"] == provider.issuer and id_token.claims["email"] == ADMIN_EMAIL
    assert id_token.claims["sub"] == provider.admin_id and id_token.claims["auth_time"] > 0
    assert tokens["refresh_token"]
    assert info == {"sub": provider.admin_id, "name": "Mesh admin", "email": ADMIN_EMAIL, "email_verified": False}


async def test_a_wrong_verifier_is_invalid_grant(provider: Provider, public_client: str) -> None:
    _, challenge = pkce()
    code = await run(code_for, provider, public_client, challenge)
    other, _ = pkce()
    answer = await run(token, provider, {"grant_type": "authorization_code", "code": code, "client_id": public_client,
                                         "redirect_uri": REDIRECT_URI, "code_verifier": other})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("pkce_params", [{"code_challenge_method": "plain"}, {"code_challenge": ""}])
async def test_plain_or_missing_pkce_is_refused(provider: Provider, public_client: str,
                                                pkce_params: dict[str, str]) -> None:
    verifier, challenge = pkce()
    params = {"code_challenge_method": "plain", "code_challenge": verifier} \
        if pkce_params.get("code_challenge_method") == "plain" else pkce_params
    url = authorization_url(provider, public_client, challenge, **params)
    answer = await run(requests.get, url, allow_redirects=False, timeout=TIMEOUT)
    # Client and redirect URI are good: the error goes back to the client, with the state, and no code.
    error = location_params(answer)
    assert error["error"] == "invalid_request" and "code" not in error and error["state"].startswith("st-")


@pytest.mark.parametrize("redirect_uri", ["http://evil.example/callback", REDIRECT_URI + "/more",
                                          REDIRECT_URI + "?x=1"])
async def test_an_unregistered_redirect_uri_is_never_redirected_to(provider: Provider, public_client: str,
                                                                   redirect_uri: str) -> None:
    _, challenge = pkce()
    url = authorization_url(provider, public_client, challenge, redirect_uri=redirect_uri)
    answer = await run(requests.get, url, allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 400 and "Location" not in answer.headers


async def test_a_replayed_code_is_refused_and_revokes_what_it_gave(provider: Provider, public_client: str) -> None:
    verifier, challenge = pkce()
    code = await run(code_for, provider, public_client, challenge, scope="openid offline_access")
    form = {"grant_type": "authorization_code", "code": code, "client_id": public_client,
            "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    first = await run(token, provider, form)
    assert first.status_code == 200, first.text
    replay = await run(token, provider, form)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    refresh = await run(token, provider, {"grant_type": "refresh_token", "client_id": public_client,
                                          "refresh_token": first.json()["refresh_token"]})
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


# --- refresh tokens -----------------------------------------------------------------------------------------

async def _user_tokens(provider: Provider, client_id: str, email: str = ADMIN_EMAIL,
                       password: str = ADMIN_PASSWORD) -> dict[str, Any]:
    verifier, challenge = pkce()

    def flow() -> dict[str, Any]:
        answer = sign_in(requests.Session(), authorization_url(provider, client_id, challenge), email, password)
        reply = token(provider, {"grant_type": "authorization_code", "code": location_params(answer)["code"],
                                 "client_id": client_id, "redirect_uri": REDIRECT_URI, "code_verifier": verifier})
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    return dict(await run(flow))


def _refresh(provider: Provider, client_id: str, refresh_token: str) -> requests.Response:
    return token(provider, {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token})


async def test_refresh_rotates_and_reuse_revokes_the_family(provider: Provider, public_client: str) -> None:
    first = (await _user_tokens(provider, public_client))["refresh_token"]
    rotated = await run(_refresh, provider, public_client, first)
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["refresh_token"]
    assert second != first and rotated.json()["access_token"]
    reused = await run(_refresh, provider, public_client, first)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    # The reuse revoked the family: the token the legitimate holder has now fails too.
    after = await run(_refresh, provider, public_client, second)
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"


async def test_a_disabled_user_or_an_invalidated_session_cannot_refresh(provider: Provider,
                                                                        public_client: str) -> None:
    email, password = f"u-{uuid.uuid4().hex[:8]}@example.com", "a long enough password 1"
    user_id = await provider.add_user(email, password)
    refresh = (await _user_tokens(provider, public_client, email, password))["refresh_token"]
    refresh = (await run(_refresh, provider, public_client, refresh)).json()["refresh_token"]
    await provider.sql("UPDATE users SET status = 'disabled' WHERE id = %s", (user_id,))
    refused = await run(_refresh, provider, public_client, refresh)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"

    await provider.sql("UPDATE users SET status = 'active' WHERE id = %s", (user_id,))
    refresh = (await _user_tokens(provider, public_client, email, password))["refresh_token"]
    # A password change sets sessions_valid_after: every family issued before it is refused.
    await provider.sql("UPDATE users SET sessions_valid_after = now() WHERE id = %s", (user_id,))
    refused = await run(_refresh, provider, public_client, refresh)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


# --- device flow ----------------------------------------------------------------------------------------------

def _device_flow(provider: Provider, client_id: str) -> tuple[list[str], dict[str, Any]]:
    started = requests.post(provider.url("/oauth2/device_authorization"),
                            data={"client_id": client_id, "scope": "openid mesh"}, timeout=TIMEOUT)
    assert started.status_code == 200, started.text
    grant = started.json()
    assert grant["verification_uri"] == provider.url("/oauth2/device") and grant["interval"] == 5
    poll = {"grant_type": DEVICE, "device_code": grant["device_code"], "client_id": client_id}
    errors = [token(provider, poll).json()["error"], token(provider, poll).json()["error"]]

    session = requests.Session()
    page = session.get(grant["verification_uri_complete"], timeout=TIMEOUT)
    assert page.status_code == 200 and grant["user_code"] in page.text
    form = {"csrf_token": session.cookies["pm_csrf"], "user_code": grant["user_code"].lower().replace("-", " "),
            "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "decision": "approve"}
    approved = session.post(provider.url("/oauth2/device"), data=form, timeout=TIMEOUT)
    assert approved.status_code == 200 and "connected" in approved.text, approved.text
    tokens = token(provider, poll)
    assert tokens.status_code == 200, tokens.text
    again = token(provider, poll)  # a device code gives its tokens once
    assert again.status_code == 400
    return errors, tokens.json()


async def test_device_flow_with_slow_down(provider: Provider, public_client: str) -> None:
    errors, tokens = await run(_device_flow, provider, public_client)
    assert errors == ["authorization_pending", "slow_down"]
    claims = (await run(provider.decode, tokens["access_token"])).claims
    assert claims["sub"] == provider.admin_id and claims["client_id"] == public_client and tokens["refresh_token"]


# --- revocation, introspection ----------------------------------------------------------------------------------

async def test_revocation_and_introspection(provider: Provider, web_client: tuple[str, str],
                                            public_client: str) -> None:
    client_id, secret = web_client
    tokens = await _user_tokens(provider, public_client)

    def introspect(value: str, auth: tuple[str, str] | None = (client_id, secret)) -> requests.Response:
        return requests.post(provider.url("/oauth2/introspect"), data={"token": value}, auth=auth, timeout=TIMEOUT)

    active = (await run(introspect, tokens["access_token"])).json()
    assert active["active"] is True and active["sub"] == provider.admin_id and active["client_id"] == public_client
    assert (await run(introspect, "not-a-token")).json() == {"active": False}
    # Someone else's refresh token is not disclosed to this client.
    assert (await run(introspect, tokens["refresh_token"])).json() == {"active": False}
    anonymous = await run(introspect, tokens["access_token"], None)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"

    def revoke(value: str) -> requests.Response:
        return requests.post(provider.url("/oauth2/revoke"), data={"token": value, "client_id": public_client},
                             timeout=TIMEOUT)

    assert (await run(revoke, tokens["access_token"])).status_code == 200
    assert (await run(introspect, tokens["access_token"])).json() == {"active": False}
    userinfo = await run(requests.get, provider.url("/oauth2/userinfo"), timeout=TIMEOUT,
                         headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 401 and "invalid_token" in userinfo.headers["WWW-Authenticate"]
    assert (await run(revoke, tokens["refresh_token"])).status_code == 200
    refused = await run(_refresh, provider, public_client, tokens["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert (await run(revoke, "unknown-token")).status_code == 200  # RFC 7009 2.2: nothing to say
    await run(provider.service.deps.oauth.store.sweep, 900)  # housekeeping runs on these tables


# --- sign-in limits ---------------------------------------------------------------------------------------------

async def test_failed_logins_are_limited_and_unknown_users_look_like_wrong_passwords(
        provider: Provider, public_client: str) -> None:
    email, password = f"u-{uuid.uuid4().hex[:8]}@example.com", "the right password 123"
    await provider.add_user(email, password)
    _, challenge = pkce()
    url = authorization_url(provider, public_client, challenge, state="fixed-state")
    address = {"X-Forwarded-For": f"198.51.100.7, 10.0.{secrets.randbelow(250)}.{secrets.randbelow(250)}"}

    def attempts() -> tuple[list[requests.Response], requests.Response, requests.Response]:
        session = requests.Session()
        unknown = sign_in(session, url, f"nobody-{uuid.uuid4().hex[:6]}@example.com", password, address)
        wrong = [sign_in(session, url, email, "not the password", address) for _ in range(5)]
        right = sign_in(session, url, email, password, address)
        return wrong, unknown, right

    wrong, unknown, right = await run(attempts)
    assert unknown.status_code == 401 and all(w.status_code == 401 for w in wrong)
    assert unknown.text == wrong[0].text  # the same page, word for word
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0
    assert "Location" not in right.headers and password not in right.text


def _read_private(path: Path) -> tuple[int, dict[str, Any]]:
    document: dict[str, Any] = json.loads(path.read_text())
    return stat.S_IMODE(path.stat().st_mode), document


async def test_the_bootstrap_file_holds_a_working_cli_session(provider: Provider) -> None:
    mode, document = await run(_read_private, Path(provider.service.deps.settings.bootstrap_file or ""))
    assert mode == 0o600
    assert document["client_id"] == "protomesh-cli" and document["admin_email"] == ADMIN_EMAIL
    assert "admin_password" not in document  # it came from PROTOMESH_ADMIN_PASSWORD
    refreshed = await run(_refresh, provider, "protomesh-cli", document["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    claims = (await run(provider.decode, refreshed.json()["access_token"])).claims
    assert claims["sub"] == provider.admin_id and "mesh" in claims["scope"].split()


# --- ClientService, organizations --------------------------------------------------------------------------------

async def test_client_service_lists_gets_and_disables(provider: Provider) -> None:
    from protomesh.identity.v1 import client_service_pb2 as cpb

    client_id, secret = await provider.register(grant_types=["client_credentials"], scopes=["mesh"])
    public_client, _ = await provider.register(grant_types=["authorization_code", "refresh_token"],
                                               redirect_uris=[REDIRECT_URI], scopes=USER_SCOPES, public=True)
    stub = provider.clients()
    got = (await stub.GetClient(cpb.GetClientRequest(client_id=client_id))).client
    assert got.client_id == client_id and not got.public and not got.disabled and got.create_time.seconds > 0
    listed = [c.client_id for c in (await stub.ListClients(cpb.ListClientsRequest(page_size=1000))).clients]
    assert client_id in listed and public_client in listed
    refresh = (await _user_tokens(provider, public_client))["refresh_token"]

    disabled = (await stub.DisableClient(cpb.DisableClientRequest(client_id=public_client))).client
    assert disabled.disabled and disabled.disable_time.seconds > 0
    refused = await run(_refresh, provider, public_client, refresh)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_client"  # 400: no Basic auth sent
    assert public_client not in [c.client_id for c in (await stub.ListClients(cpb.ListClientsRequest())).clients]
    await provider.sql("UPDATE oauth_clients SET disabled_at = NULL WHERE client_id = %s", (public_client,))
    # Its refresh tokens were revoked with it, and stay so when it is enabled again.
    refused = await run(_refresh, provider, public_client, refresh)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    # The secret is shown once: never in a later answer.
    assert secret not in str(got) and secret not in str(listed)


async def test_the_org_parameter_picks_the_tokens_organization(provider: Provider, public_client: str) -> None:
    email, password = f"u-{uuid.uuid4().hex[:8]}@example.com", "a long enough password 2"
    user_id = await provider.add_user(email, password, role="viewer")
    other, name = uuid.uuid4(), f"other-{uuid.uuid4().hex[:6]}"
    await provider.sql("INSERT INTO organizations (id, name, display_name) VALUES (%s, %s, %s)", (other, name, name))
    await provider.sql("INSERT INTO memberships (organization_id, user_id, role) VALUES (%s, %s, 'admin')",
                       (other, user_id))
    first = (await run(provider.decode, (await _user_tokens(provider, public_client, email, password))
                       ["access_token"])).claims
    assert first["org"] == provider.organization_id and first["roles"] == ["viewer"] and "admin" not in first

    verifier, challenge = pkce()

    def flow() -> dict[str, Any]:
        url = authorization_url(provider, public_client, challenge, org=name)
        code = location_params(sign_in(requests.Session(), url, email, password))["code"]
        body: dict[str, Any] = token(provider, {"grant_type": "authorization_code", "code": code,
                                                "client_id": public_client, "redirect_uri": REDIRECT_URI,
                                                "code_verifier": verifier}).json()
        return body

    chosen = (await run(provider.decode, (await run(flow))["access_token"])).claims
    assert chosen["org"] == str(other) and chosen["roles"] == ["admin"]
