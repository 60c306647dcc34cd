"""Bad tokens and OAuth attacks, through Envoy against the real identity service and a real seed endpoint.

Hand-made tokens are refused by the gateway (REST: 401 with WWW-Authenticate; gRPC: UNAUTHENTICATED)
on GET /v1/agents and AgentService/ListAgents. The claim attacks are signed with the identity
service's own current key (read from its table with the mesh's key: the one white-box step), so each
token is wrong in exactly one way; a control token made the same way with every claim right passes.
The OAuth attacks get the status and `error` the RFCs name (RFC 6749, 7636, 8628), and failed logins
are limited with the same answer for an unknown account and a wrong password.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc.jwk import RSAKey

from chassis.tooling.supervisor import Mesh
from protomesh.agent.v1 import agent_service_pb2 as pb
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub
from tests.e2e.identity_support import (
    ADMIN_PASSWORD,
    DEVICE_GRANT,
    access_claims,
    admin_tokens,
    authorize,
    b64url,
    b64url_decode,
    base_url,
    device_login,
    first,
    identity_call,
    identity_mesh,
    jwt_parts,
    parse_forms,
    redirect_params,
    sign,
    signing_key,
    start_device_flow,
    submit_form,
    token_request,
)

REDIRECT_URI = "http://127.0.0.1:8766/callback"
USER_PASSWORD = f"user-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    """Identity and agent (the seed endpoint the tokens are tried on), one replica each, and Envoy."""
    with identity_mesh("agent") as started:
        yield started


@pytest.fixture(scope="module")
def admin(mesh: Mesh) -> dict[str, Any]:
    """The bootstrap admin's token response."""
    return admin_tokens(mesh)


@pytest.fixture(scope="module")
def key(mesh: Mesh) -> RSAKey:
    """The identity service's current private signing key."""
    return signing_key(mesh)


@pytest.fixture(scope="module")
def agents(mesh: Mesh) -> Iterator[AgentServiceStub]:
    """AgentService over native gRPC through the gateway."""
    with grpc.insecure_channel(mesh.gateway) as channel:
        yield AgentServiceStub(channel)


@pytest.fixture(scope="module")
def client(mesh: Mesh, admin: dict[str, Any]) -> dict[str, str]:
    """A confidential client for the authorization code flow."""
    answer = identity_call(mesh, "RegisterClient", {
        "name": "attack-test", "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "profile", "email", "offline_access", "mesh"],
    }, token=admin["access_token"])
    return {"client_id": first(answer, "client_id"), "client_secret": first(answer, "client_secret")}


def rest_status(mesh: Mesh, token: str) -> requests.Response:
    return requests.get(base_url(mesh) + "/v1/agents", headers={"authorization": f"Bearer {token}"}, timeout=10)


def grpc_code(agents: AgentServiceStub, token: str) -> grpc.StatusCode:
    try:
        agents.ListAgents(pb.ListAgentsRequest(), metadata=[("authorization", f"Bearer {token}")], timeout=10)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def assert_refused(mesh: Mesh, agents: AgentServiceStub, token: str) -> None:
    reply = rest_status(mesh, token)
    assert reply.status_code == 401, f"{reply.status_code}: {reply.text[:200]}"
    assert reply.headers.get("WWW-Authenticate", "").lower().startswith("bearer"), dict(reply.headers)
    assert grpc_code(agents, token) == grpc.StatusCode.UNAUTHENTICATED


# --- hand-made tokens -------------------------------------------------------------------------------------

def _now() -> int:
    return int(time.time())


def _hs256_with_public_key(mesh: Mesh, key: RSAKey, secret: bytes) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": key.kid}).encode())
    payload = b64url(json.dumps(access_claims(mesh)).encode())
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(mac)}"


def _alg_none(mesh: Mesh, key: RSAKey) -> str:
    header = b64url(json.dumps({"alg": "none", "typ": "at+jwt", "kid": key.kid}).encode())
    return f"{header}.{b64url(json.dumps(access_claims(mesh)).encode())}."


# The gateway allows 30 s of clock skew (chassis/tooling/gateway_auth.py): the times here are well beyond it.
FORGED: dict[str, Callable[[Mesh, RSAKey], str]] = {
    "expired": lambda mesh, key: sign(key, access_claims(mesh, iat=_now() - 900, nbf=_now() - 900,
                                                         exp=_now() - 300)),
    "not_yet_valid": lambda mesh, key: sign(key, access_claims(mesh, nbf=_now() + 600, exp=_now() + 900)),
    "wrong_iss": lambda mesh, key: sign(key, access_claims(mesh, iss="http://evil.example")),
    "wrong_aud": lambda mesh, key: sign(key, access_claims(mesh, aud="someone-else")),
    "no_exp": lambda mesh, key: sign(key, access_claims(mesh, exp=None)),
    "unknown_kid": lambda mesh, key: sign(key, access_claims(mesh), kid="no-such-key"),
    "another_key": lambda mesh, _: sign(RSAKey.generate_key(2048, {"kid": "attacker"}), access_claims(mesh)),
    "another_key_with_a_known_kid": lambda mesh, key: sign(RSAKey.generate_key(2048, {"kid": key.kid or ""}),
                                                           access_claims(mesh)),
    "alg_none": _alg_none,
    "hs256_with_the_public_pem": lambda mesh, key: _hs256_with_public_key(mesh, key, key.as_pem(private=False)),
    "hs256_with_the_public_jwk": lambda mesh, key: _hs256_with_public_key(
        mesh, key, json.dumps(key.as_dict(private=False)).encode()),
    "not_a_jwt": lambda mesh, key: "not.a.jwt",
}


def test_a_token_signed_right_with_every_claim_right_passes(mesh: Mesh, key: RSAKey,
                                                            agents: AgentServiceStub) -> None:
    """The control: the forged tokens below differ from this one in one thing each."""
    token = sign(key, access_claims(mesh))
    assert rest_status(mesh, token).status_code == 200
    assert grpc_code(agents, token) == grpc.StatusCode.OK


@pytest.mark.parametrize("attack", sorted(FORGED))
def test_a_bad_token_is_refused(mesh: Mesh, key: RSAKey, agents: AgentServiceStub, attack: str) -> None:
    assert_refused(mesh, agents, FORGED[attack](mesh, key))


def test_no_token_is_refused_with_a_challenge(mesh: Mesh, agents: AgentServiceStub) -> None:
    reply = requests.get(base_url(mesh) + "/v1/agents", timeout=10)
    assert reply.status_code == 401 and "bearer" in reply.headers.get("WWW-Authenticate", "").lower()
    with pytest.raises(grpc.RpcError) as refused:
        agents.ListAgents(pb.ListAgentsRequest(), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_tampered_payload_is_refused(mesh: Mesh, admin: dict[str, Any], agents: AgentServiceStub,
                                       key: RSAKey) -> None:
    real = admin["access_token"]
    assert rest_status(mesh, real).status_code == 200
    header, payload, signature = real.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["sub"], claims["roles"] = "someone-else", ["owner", "admin"]
    assert_refused(mesh, agents, f"{header}.{b64url(json.dumps(claims).encode())}.{signature}")
    # A real signature of another payload, under this payload.
    other = sign(key, access_claims(mesh)).split(".")[2]
    assert_refused(mesh, agents, f"{header}.{payload}.{other}")


# --- OAuth flows -------------------------------------------------------------------------------------------

def _start(mesh: Mesh, client: dict[str, str], **params: str) -> tuple[OAuth2Session, str, str]:
    oauth = OAuth2Session(client["client_id"], client["client_secret"], scope="openid email offline_access",
                          redirect_uri=REDIRECT_URI, code_challenge_method="S256")
    verifier = generate_token(48)
    url, _ = oauth.create_authorization_url(base_url(mesh) + "/oauth2/authorize", code_verifier=verifier,
                                            nonce=generate_token(16), **params)
    return oauth, url, verifier


def _code(mesh: Mesh, client: dict[str, str]) -> tuple[str, str]:
    """(code, verifier) of a completed login."""
    _, url, verifier = _start(mesh, client)
    params = redirect_params(authorize(mesh, requests.Session(), url))
    return params["code"], verifier


def _exchange(mesh: Mesh, client: dict[str, str], code: str, verifier: str) -> requests.Response:
    return token_request(mesh, {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                "redirect_uri": REDIRECT_URI},
                         auth=(client["client_id"], client["client_secret"]))


def test_a_pkce_verifier_that_does_not_match_is_invalid_grant(mesh: Mesh, client: dict[str, str]) -> None:
    code, _ = _code(mesh, client)
    wrong = _exchange(mesh, client, code, generate_token(48))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant", wrong.text
    missing = token_request(mesh, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
                            auth=(client["client_id"], client["client_secret"]))
    assert missing.status_code == 400 and missing.json()["error"] in ("invalid_grant", "invalid_request")


def test_pkce_is_required_and_s256_only(mesh: Mesh, client: dict[str, str]) -> None:
    for params in ({"code_challenge_method": "plain", "code_challenge": generate_token(48)}, {}):
        query = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT_URI,
                 "scope": "openid", "state": "s1", **params}
        answer = requests.get(base_url(mesh) + "/oauth2/authorize", params=query, allow_redirects=False, timeout=10)
        if answer.status_code in (302, 303):  # RFC 6749 4.1.2.1: the error goes back to the client
            assert redirect_params(answer).get("error") == "invalid_request" and "code" not in redirect_params(answer)
        else:
            assert answer.status_code == 400 and not parse_forms(answer.text), answer.text[:300]


@pytest.mark.parametrize("redirect_uri", ["http://evil.example/callback", REDIRECT_URI + "/more",
                                          REDIRECT_URI + "?x=1", "http://127.0.0.1:8767/callback"])
def test_an_unregistered_redirect_uri_gets_no_redirect(mesh: Mesh, client: dict[str, str], redirect_uri: str) -> None:
    oauth = OAuth2Session(client["client_id"], client["client_secret"], scope="openid",
                          redirect_uri=redirect_uri, code_challenge_method="S256")
    url, _ = oauth.create_authorization_url(base_url(mesh) + "/oauth2/authorize", code_verifier=generate_token(48))
    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 400 and "Location" not in answer.headers, (answer.status_code, answer.text[:300])
    assert not any(f.has("password") for f in parse_forms(answer.text)), "no login form for a bad redirect"
    # Posting the login form anyway does not redirect there either.
    posted = requests.post(url, data={"email": "admin@protomesh.local", "password": ADMIN_PASSWORD},
                           allow_redirects=False, timeout=10)
    assert posted.status_code == 400 and "Location" not in posted.headers


def test_a_replayed_code_is_invalid_grant_and_revokes_what_it_issued(mesh: Mesh, client: dict[str, str]) -> None:
    code, verifier = _code(mesh, client)
    first_exchange = _exchange(mesh, client, code, verifier)
    assert first_exchange.status_code == 200, first_exchange.text
    tokens = first_exchange.json()
    replay = _exchange(mesh, client, code, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant", replay.text
    refresh = token_request(mesh, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                            auth=(client["client_id"], client["client_secret"]))
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant", \
        "the refresh token issued from a replayed code is revoked (RFC 6749 4.1.2)"


def test_a_device_code_polled_too_fast_is_slow_down(mesh: Mesh) -> None:
    grant = start_device_flow(mesh)
    answers = [token_request(mesh, {"grant_type": DEVICE_GRANT, "device_code": grant.device_code,
                                    "client_id": "protomesh-cli"}) for _ in range(2)]
    assert answers[0].status_code == 400 and answers[0].json()["error"] in ("authorization_pending", "slow_down")
    assert answers[1].status_code == 400 and answers[1].json()["error"] == "slow_down", answers[1].text
    unknown = token_request(mesh, {"grant_type": DEVICE_GRANT, "device_code": "not-issued",
                                   "client_id": "protomesh-cli"})
    # RFC 6749 5.2 would say invalid_grant; Authlib's device code grant answers invalid_request ("Invalid
    # 'device_code'"): both are a 400 that issues nothing.
    assert unknown.status_code == 400 and unknown.json()["error"] in ("invalid_grant", "invalid_request")


# --- users: disable, password change, login limits --------------------------------------------------------

def _user(mesh: Mesh, admin: dict[str, Any], email: str) -> str:
    """A new member of the admin's organization; its user id."""
    token = admin["access_token"]
    user = identity_call(mesh, "CreateUser", {"email": email, "display_name": email.split("@")[0],
                                              "password": USER_PASSWORD}, token=token)
    user_id: str = first(user, "user_id")
    org = jwt_parts(token)[1]["org"]
    identity_call(mesh, "AddMember", {"organization_id": org, "user_id": user_id, "role": "ROLE_MEMBER"},
                  token=token)
    return user_id


def _refresh(mesh: Mesh, refresh_token: str) -> requests.Response:
    return token_request(mesh, {"grant_type": "refresh_token", "refresh_token": refresh_token,
                                "client_id": "protomesh-cli"})


def test_a_disabled_users_refresh_is_invalid_grant(mesh: Mesh, admin: dict[str, Any],
                                                   client: dict[str, str]) -> None:
    email = f"disabled-{uuid.uuid4().hex[:8]}@example.com"
    user_id = _user(mesh, admin, email)
    session = device_login(mesh, email, USER_PASSWORD)
    renewed = _refresh(mesh, session["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    identity_call(mesh, "DisableUser", {"user_id": user_id}, token=admin["access_token"])
    refused = _refresh(mesh, renewed.json()["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text
    # Signing in with the right password now: refused with the page an unknown account gets.
    disabled = _login(mesh, client, email, USER_PASSWORD)
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    assert disabled.status_code not in (302, 303)
    assert _visible(disabled, email) == _visible(_login(mesh, client, unknown, USER_PASSWORD), unknown)


def test_a_password_change_revokes_the_other_sessions(mesh: Mesh, admin: dict[str, Any]) -> None:
    email = f"changer-{uuid.uuid4().hex[:8]}@example.com"
    user_id = _user(mesh, admin, email)
    laptop, phone = device_login(mesh, email, USER_PASSWORD), device_login(mesh, email, USER_PASSWORD)
    identity_call(mesh, "ChangePassword", {"user_id": user_id, "old_password": USER_PASSWORD,
                                           "new_password": USER_PASSWORD + "-new"}, token=laptop["access_token"])
    refused = _refresh(mesh, phone["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text
    assert device_login(mesh, email, USER_PASSWORD + "-new")["access_token"]


def _login(mesh: Mesh, client: dict[str, str], email: str, password: str) -> requests.Response:
    """One sign-in on the authorization page of `client`; the answer, unfollowed."""
    session = requests.Session()
    _, url, _ = _start(mesh, client)
    return submit_form(session, session.get(url, timeout=10), email=email, password=password)


def _visible(page: requests.Response, email: str) -> str:
    """A login answer without what may differ between two attempts: the email typed, hidden values."""
    text = re.sub(r'value="[^"]*"', "", page.text).replace(email, "EMAIL")
    return f"{page.status_code} {text}"


def test_failed_logins_are_limited_with_the_same_answer_for_unknown_and_wrong(mesh: Mesh, admin: dict[str, Any],
                                                                                client: dict[str, str]) -> None:
    """Runs last in the module: it spends this address's failed-login budget."""
    email = f"limited-{uuid.uuid4().hex[:8]}@example.com"
    _user(mesh, admin, email)
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"

    def attempt(who: str, password: str) -> requests.Response:
        return _login(mesh, client, who, password)

    wrong, nobody = attempt(email, "not-the-password"), attempt(unknown, "not-the-password")
    assert wrong.status_code not in (302, 303) and wrong.status_code < 500
    assert _visible(wrong, email) == _visible(nobody, unknown), "the answers tell the two apart"

    for who in (email, unknown):
        statuses = [attempt(who, "not-the-password") for _ in range(8)]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited, f"{who}: never limited: {[r.status_code for r in statuses]}"
        assert int(limited[0].headers["Retry-After"]) > 0
    # While limited, even the right password is refused the same way.
    locked = attempt(email, USER_PASSWORD)
    assert locked.status_code == 429 and "Location" not in locked.headers
