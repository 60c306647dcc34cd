"""Signing key rotation (old tokens stay verifiable, a key signs only after it was published long enough)
and Envoy's ext_authz check for API keys, on a replica with a 1 s publish lead."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from protomesh.identity.v1 import identity_pb2
from protomesh.identity.v1 import signing_key_service_pb2 as kpb
from protomesh.identity.v1.signing_key_service_pb2_grpc import SigningKeyServiceStub
from services.identity.apikeys import generate_key
from services.identity.tests.oauth_harness import TIMEOUT, Provider, claims_header, serve_provider, token

LEAD = 3.0


@pytest.fixture(scope="module")
async def provider(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Provider]:
    async with serve_provider(pytestconfig, tmp_path_factory.mktemp("identity-keys"),
                              env={"IDENTITY_KEY_PUBLISH_LEAD": f"{LEAD}s"}) as served:
        yield served


def _service_token(provider: Provider, client: tuple[str, str]) -> str:
    reply = token(provider, {"grant_type": "client_credentials"}, auth=client)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


def _jwks(provider: Provider) -> KeySet:
    return KeySet.import_key_set(requests.get(provider.url("/oauth2/jwks"), timeout=TIMEOUT).json())


async def test_rotation_publishes_before_signing_and_keeps_old_tokens_verifiable(provider: Provider) -> None:
    keys = provider.service.stub(SigningKeyServiceStub, principal=provider.admin)
    client = await provider.register(grant_types=["client_credentials"], scopes=["mesh"])
    before = await asyncio.to_thread(_service_token, provider, client)
    old_kid = jwt.decode(before, await asyncio.to_thread(_jwks, provider)).header["kid"]
    listed = (await keys.ListSigningKeys(kpb.ListSigningKeysRequest())).signing_keys
    states = {k.kid: k.state for k in listed}
    assert states[old_kid] == identity_pb2.SIGNING_KEY_STATE_CURRENT
    next_kid = next(kid for kid, state in states.items() if state == identity_pb2.SIGNING_KEY_STATE_NEXT)

    await asyncio.sleep(LEAD + 0.2)  # the next key has now been published for the lead
    rotated = await keys.RotateSigningKey(kpb.RotateSigningKeyRequest(request_id=f"rot-{uuid.uuid4().hex[:8]}"))
    assert rotated.current.kid == next_kid and rotated.retiring.kid == old_kid and rotated.next.kid
    assert rotated.retiring.expire_time.seconds > time.time()
    # At once again (before anything slower, so well within the lead on a busy machine too): the new next key
    # has not been published for the lead yet.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await keys.RotateSigningKey(kpb.RotateSigningKeyRequest())
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    after = await asyncio.to_thread(_service_token, provider, client)
    published = await asyncio.to_thread(_jwks, provider)
    assert {k.kid for k in published.keys} == {old_kid, next_kid, rotated.next.kid}
    assert jwt.decode(after, published).header["kid"] == next_kid  # the rotating replica signs at once
    assert jwt.decode(before, published).claims["sub"] == f"client:{client[0]}"  # the old token still verifies



async def test_only_platform_admins_manage_keys(provider: Provider) -> None:
    keys = provider.service.stub(SigningKeyServiceStub)  # the harness's test principal: an org admin
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await keys.RotateSigningKey(kpb.RotateSigningKeyRequest())
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


# --- ext_authz ---------------------------------------------------------------------------------------------

async def _api_key(provider: Provider, *, rate: float = 0.0, burst: int = 0) -> tuple[str, str]:
    """An API key of `local` written as ApiKeyService would: (key, key id)."""
    new = generate_key(provider.service.deps.pepper)
    key_id = uuid.uuid4()
    await provider.sql("INSERT INTO api_keys (id, organization_id, name, prefix, secret_hash, scopes,"
                       " rate_limit_per_second, rate_limit_burst) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                       (key_id, provider.organization_id, "ci", new.prefix, new.secret_hash, ["mesh"], rate, burst))
    return new.key, str(key_id)


def _authz(provider: Provider, headers: dict[str, str], path: str = "/v1/agents") -> requests.Response:
    return requests.post(provider.url("/internal/authz" + path), headers=headers, timeout=TIMEOUT)


async def test_ext_authz_turns_an_api_key_into_claims(provider: Provider) -> None:
    key, key_id = await _api_key(provider)
    for headers in ({"Authorization": f"ApiKey {key}"}, {"x-api-key": key}):
        answer = await asyncio.to_thread(_authz, provider, headers)
        assert answer.status_code == 200, answer.text
        claims: dict[str, Any] = claims_header(answer.headers["x-protomesh-claims"])
        assert claims["sub"] == f"apikey:{key_id}" and claims["kind"] == "api_key"
        assert claims["org"] == provider.organization_id and claims["scope"] == "mesh"
        assert "=" not in answer.headers["x-protomesh-claims"]


async def test_ext_authz_refusals(provider: Provider) -> None:
    missing = await asyncio.to_thread(_authz, provider, {})
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == 'Bearer realm="protomesh"'
    assert missing.json()["code"] == 16 and "x-api-key" in missing.json()["message"]
    key, _ = await _api_key(provider)
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    bad = await asyncio.to_thread(_authz, provider, {"x-api-key": wrong})
    assert bad.status_code == 401 and 'error="invalid_key"' in bad.headers["WWW-Authenticate"]
    assert "x-protomesh-claims" not in bad.headers and wrong not in bad.text

    limited, _ = await _api_key(provider, rate=0.01, burst=1)
    first = await asyncio.to_thread(_authz, provider, {"x-api-key": limited})
    second = await asyncio.to_thread(_authz, provider, {"x-api-key": limited})
    assert first.status_code == 200 and second.status_code == 429 and int(second.headers["Retry-After"]) >= 1
