"""The identity provider as an outside OIDC client sees it, through the gateway: Authlib's OAuth2Session
(a client no one here wrote) runs discovery, client credentials, the authorization code flow with
PKCE S256, refresh with rotation, revocation (RFC 7009), introspection (RFC 7662) and userinfo;
joserfc verifies the ID and access tokens with the keys the provider publishes (its JWKS).

The login form is driven over HTTP as a browser would (GET the authorization URL, POST the form),
with the bootstrap admin's password, which the test sets through PROTOMESH_ADMIN_PASSWORD.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.jwk import KeySet

from chassis.tooling.supervisor import Mesh
from tests.e2e.identity_support import (
    ADMIN_EMAIL,
    AUDIENCE,
    admin_token,
    authorize,
    base_url,
    discovery,
    first,
    identity_call,
    identity_mesh,
    redirect_params,
)

REDIRECT_URI = "http://127.0.0.1:8765/callback"
"""Registered for the test's client; nothing listens there: the test reads the 302's Location."""
SCOPES = "openid profile email offline_access"


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    """PostgreSQL, NATS, one identity replica and Envoy: nothing else is needed by an OIDC client."""
    with identity_mesh() as started:
        yield started


@pytest.fixture(scope="module")
def provider(mesh: Mesh) -> dict[str, Any]:
    """The discovery document."""
    return discovery(mesh)


@pytest.fixture(scope="module")
def keys(provider: dict[str, Any]) -> KeySet:
    """The published JWKS, imported by joserfc."""
    reply = requests.get(provider["jwks_uri"], timeout=10)
    assert reply.status_code == 200, reply.text
    return KeySet.import_key_set(reply.json())


@pytest.fixture(scope="module")
def client(mesh: Mesh) -> dict[str, str]:
    """A confidential client registered by the admin through ClientService: (client_id, client_secret)."""
    answer = identity_call(mesh, "RegisterClient", {
        "name": f"oidc-test-{uuid.uuid4().hex[:8]}",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "scopes": ["openid", "profile", "email", "offline_access", "mesh"],
    }, token=admin_token(mesh))  # confidential: not `public`, so it gets a secret
    client_id, secret = first(answer, "client_id", "clientId"), first(answer, "client_secret", "clientSecret")
    assert client_id and secret, f"RegisterClient answered no client id or secret: {answer}"
    return {"client_id": client_id, "client_secret": secret}


def session_of(client: dict[str, str], **kwargs: Any) -> OAuth2Session:
    """An Authlib session for the registered client (client_secret_basic)."""
    return OAuth2Session(client["client_id"], client["client_secret"], **kwargs)


def verify_access_token(token: str, keys: KeySet, issuer: str) -> dict[str, Any]:
    """Check signature (RS256 from the JWKS), header and the claims every access token carries; its claims."""
    decoded = jwt.decode(token, keys, algorithms=["RS256"])
    assert decoded.header["typ"].lower() in ("at+jwt", "application/at+jwt")
    assert decoded.header["kid"] in {k.kid for k in keys.keys}
    jwt.JWTClaimsRegistry(
        leeway=5,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": AUDIENCE},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
        client_id={"essential": True},
    ).validate(decoded.claims)
    claims = decoded.claims
    assert claims["exp"] > time.time() > claims["iat"] - 5
    assert claims["exp"] - claims["iat"] <= 3600, "access tokens are short-lived"
    return claims


def code_flow(mesh: Mesh, provider: dict[str, Any], client: dict[str, str]) -> tuple[OAuth2Session, dict[str, Any],
                                                                                        str]:
    """The authorization code flow with PKCE S256 for the admin: (session, token response, nonce)."""
    oauth = session_of(client, scope=SCOPES, redirect_uri=REDIRECT_URI, code_challenge_method="S256")
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = oauth.create_authorization_url(provider["authorization_endpoint"], code_verifier=verifier,
                                                nonce=nonce)
    answer = authorize(mesh, requests.Session(), url)
    location = answer.headers.get("Location", "")
    assert answer.status_code in (302, 303) and location.startswith(REDIRECT_URI + "?"), \
        f"the login did not redirect to the registered URI: {answer.status_code} {location} {answer.text[:300]}"
    params = redirect_params(answer)
    assert params["state"] == state and params.get("code"), params
    token = oauth.fetch_token(provider["token_endpoint"], authorization_response=location, state=state,
                              code_verifier=verifier)
    return oauth, dict(token), nonce


@pytest.fixture(scope="module")
def code_tokens(mesh: Mesh, provider: dict[str, Any], client: dict[str, str]) -> tuple[dict[str, Any], str]:
    """One authorization code flow's tokens and nonce, shared by the checks that only read them."""
    _, token, nonce = code_flow(mesh, provider, client)
    return token, nonce


def test_discovery_through_the_gateway(mesh: Mesh, provider: dict[str, Any]) -> None:
    OpenIDProviderMetadata(provider).validate()  # Authlib's OIDC Discovery and RFC 8414 checks
    issuer = base_url(mesh)
    assert provider["issuer"] == issuer
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint",
                     "revocation_endpoint", "introspection_endpoint", "device_authorization_endpoint"):
        assert provider[endpoint].startswith(issuer + "/"), f"{endpoint}: {provider.get(endpoint)}"
    assert provider["code_challenge_methods_supported"] == ["S256"]
    grants = set(provider["grant_types_supported"])
    assert {"authorization_code", "client_credentials", "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code"} <= grants
    assert "password" not in grants and "implicit" not in grants
    assert provider["id_token_signing_alg_values_supported"] == ["RS256"]
    jwks = requests.get(provider["jwks_uri"], timeout=10).json()
    assert jwks["keys"] and all(k["kty"] == "RSA" and k["alg"] == "RS256" and k.get("kid") for k in jwks["keys"])
    assert all(not {"d", "p", "q"} & set(k) for k in jwks["keys"]), "the JWKS publishes public keys only"


def test_client_credentials(mesh: Mesh, provider: dict[str, Any], client: dict[str, str], keys: KeySet) -> None:
    oauth = session_of(client, scope="mesh")
    token = oauth.fetch_token(provider["token_endpoint"], grant_type="client_credentials")
    assert token["token_type"].lower() == "bearer" and "refresh_token" not in token
    claims = verify_access_token(token["access_token"], keys, provider["issuer"])
    assert claims["sub"] == f"client:{client['client_id']}"
    assert claims["client_id"] == client["client_id"] and claims["kind"] == "service"
    assert "mesh" in claims["scope"].split()

    wrong = session_of({"client_id": client["client_id"], "client_secret": "not-the-secret"}, scope="mesh")
    with pytest.raises(OAuthError) as refused:
        wrong.fetch_token(provider["token_endpoint"], grant_type="client_credentials")
    assert refused.value.error == "invalid_client"


def test_authorization_code_with_pkce_and_the_id_token(provider: dict[str, Any], client: dict[str, str],
                                                       keys: KeySet,
                                                       code_tokens: tuple[dict[str, Any], str]) -> None:
    token, nonce = code_tokens
    assert token["token_type"].lower() == "bearer"
    assert token.get("refresh_token") and token.get("id_token")
    assert set(token["scope"].split()) >= {"openid", "email"}

    id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        leeway=5,
        iss={"essential": True, "value": provider["issuer"]},
        aud={"essential": True, "value": client["client_id"]},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
        auth_time={"essential": True},
    ).validate(id_token.claims)
    assert id_token.claims["email"] == ADMIN_EMAIL

    claims = verify_access_token(token["access_token"], keys, provider["issuer"])
    assert claims["sub"] == id_token.claims["sub"] and claims["kind"] == "user"
    assert claims["client_id"] == client["client_id"]
    assert claims["org"] and "owner" in claims["roles"] and claims.get("admin") is True
    assert {"openid", "email"} <= set(claims["scope"].split())


def test_userinfo(provider: dict[str, Any], client: dict[str, str],
                  code_tokens: tuple[dict[str, Any], str]) -> None:
    token, _ = code_tokens
    oauth = session_of(client, token=token)
    info = oauth.get(provider["userinfo_endpoint"], timeout=10)
    assert info.status_code == 200, info.text
    subject = jwt.decode(token["id_token"], KeySet.import_key_set(
        requests.get(provider["jwks_uri"], timeout=10).json())).claims["sub"]
    assert info.json()["sub"] == subject and info.json()["email"] == ADMIN_EMAIL

    anonymous = requests.get(provider["userinfo_endpoint"], timeout=10)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].lower().startswith("bearer")


def test_refresh_rotates_and_a_reused_token_revokes_its_family(mesh: Mesh, provider: dict[str, Any],
                                                               client: dict[str, str], keys: KeySet) -> None:
    oauth, token, _ = code_flow(mesh, provider, client)
    first_refresh = token["refresh_token"]
    renewed = oauth.refresh_token(provider["token_endpoint"], refresh_token=first_refresh)
    second_refresh = renewed["refresh_token"]
    assert second_refresh != first_refresh, "refresh tokens rotate on use"
    verify_access_token(renewed["access_token"], keys, provider["issuer"])

    with pytest.raises(OAuthError) as reused:
        oauth.refresh_token(provider["token_endpoint"], refresh_token=first_refresh)
    assert reused.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as family:
        oauth.refresh_token(provider["token_endpoint"], refresh_token=second_refresh)
    assert family.value.error == "invalid_grant", "the reuse revoked the whole family"


def test_revocation_then_introspection(mesh: Mesh, provider: dict[str, Any], client: dict[str, str]) -> None:
    oauth, token, _ = code_flow(mesh, provider, client)
    endpoint = provider["introspection_endpoint"]

    active = oauth.introspect_token(endpoint, token=token["access_token"], token_type_hint="access_token").json()
    assert active["active"] is True
    assert active["client_id"] == client["client_id"] and active["sub"]
    assert active.get("token_type", "").lower() in ("", "bearer", "access_token")
    refresh_info = oauth.introspect_token(endpoint, token=token["refresh_token"],
                                          token_type_hint="refresh_token").json()
    assert refresh_info["active"] is True

    revoked = oauth.revoke_token(provider["revocation_endpoint"], token=token["refresh_token"],
                                 token_type_hint="refresh_token")
    assert revoked.status_code == 200, revoked.text
    assert oauth.introspect_token(endpoint, token=token["refresh_token"]).json() == {"active": False}
    with pytest.raises(OAuthError) as refused:
        oauth.refresh_token(provider["token_endpoint"], refresh_token=token["refresh_token"])
    assert refused.value.error == "invalid_grant"

    # A revoked access token: inactive for introspection and refused by userinfo (the gateway only checks
    # signatures, so elsewhere it runs out within its short lifetime: docs/identity.md).
    assert oauth.revoke_token(provider["revocation_endpoint"], token=token["access_token"],
                              token_type_hint="access_token").status_code == 200
    assert oauth.introspect_token(endpoint, token=token["access_token"]).json() == {"active": False}
    userinfo = requests.get(provider["userinfo_endpoint"], headers={"authorization": f"Bearer {token['access_token']}"},
                            timeout=10)
    assert userinfo.status_code == 401 and "invalid_token" in userinfo.headers.get("WWW-Authenticate", "")

    # RFC 7009 2.2: an unknown or already revoked token is still a 200.
    assert oauth.revoke_token(provider["revocation_endpoint"], token="never-issued").status_code == 200
    assert oauth.introspect_token(endpoint, token="never-issued").json() == {"active": False}

    # Introspection needs client authentication (RFC 7662 2.1).
    anonymous = requests.post(endpoint, data={"token": token["access_token"]}, timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
