"""ApiKeyService and the API-key check ext_authz makes, over a real channel and PostgreSQL, in process."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from psycopg.rows import dict_row

from chassis import Principal
from chassis.testing import TEST_PLATFORM_ADMIN, InProcess
from protomesh.identity.v1 import api_key_service_pb2 as pb
from protomesh.identity.v1 import identity_pb2
from protomesh.identity.v1 import organization_service_pb2 as org_pb
from protomesh.identity.v1.api_key_service_pb2_grpc import ApiKeyServiceStub
from protomesh.identity.v1.organization_service_pb2_grpc import OrganizationServiceStub
from services.identity.apikeys import ApiKeyVerifier, parse_key
from services.identity.deps import IdentityDeps
from tests.support.errors import bad_fields


async def _org(identity: InProcess[IdentityDeps]) -> str:
    reply = await identity.stub(OrganizationServiceStub, principal=TEST_PLATFORM_ADMIN).CreateOrganization(
        org_pb.CreateOrganizationRequest(name=f"keys-{uuid.uuid4().hex[:8]}"))
    return reply.organization.organization_id


async def _key(identity: InProcess[IdentityDeps], org_id: str, **fields: object) -> pb.CreateApiKeyResponse:
    request = pb.CreateApiKeyRequest(organization_id=org_id, name="ci pipeline", scopes=["mesh", "agents.read"])
    for name, value in fields.items():
        if isinstance(value, Message):
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    return await identity.stub(ApiKeyServiceStub, principal=TEST_PLATFORM_ADMIN).CreateApiKey(request)


def _other_replica(identity: InProcess[IdentityDeps]) -> ApiKeyVerifier:
    """A verifier with its own cache, as another replica of the service has."""
    return ApiKeyVerifier(identity.replica.db, identity.deps.pepper, cache_seconds=1.0)


async def _stored(identity: InProcess[IdentityDeps], api_key_id: str) -> dict[str, Any]:
    async with identity.replica.db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM api_keys WHERE id = %s", (api_key_id,))
        row = await cur.fetchone()
    assert row is not None
    return row


async def test_the_secret_is_answered_once_and_stored_only_as_a_keyed_hash(identity: InProcess[IdentityDeps]) -> None:
    org_id = await _org(identity)
    created = await _key(identity, org_id)
    assert parse_key(created.secret) == created.api_key.prefix and created.secret.startswith("pmk_")
    assert created.api_key.status == identity_pb2.API_KEY_STATUS_ACTIVE
    assert created.api_key.created_by == TEST_PLATFORM_ADMIN.subject
    assert list(created.api_key.scopes) == ["mesh", "agents.read"]
    stored = await _stored(identity, created.api_key.api_key_id)
    assert created.secret.encode() not in repr(stored).encode() and len(bytes(stored["secret_hash"])) == 32
    stub = identity.stub(ApiKeyServiceStub, principal=TEST_PLATFORM_ADMIN)
    got = await stub.GetApiKey(pb.GetApiKeyRequest(api_key_id=created.api_key.api_key_id))
    listed = await stub.ListApiKeys(pb.ListApiKeysRequest(organization_id=org_id))
    assert got.api_key == created.api_key and list(listed.api_keys) == [created.api_key]
    assert created.secret not in str(got) + str(listed)


async def test_the_callers_organization_is_the_default(identity: InProcess[IdentityDeps]) -> None:
    org_id = await _org(identity)
    caller = Principal(subject=str(uuid.uuid4()), kind="user", organization=org_id, roles=frozenset({"admin"}))
    stub = identity.stub(ApiKeyServiceStub, principal=caller)
    created = await stub.CreateApiKey(pb.CreateApiKeyRequest(name="defaulted", scopes=["mesh"]))
    assert created.api_key.organization_id == org_id
    listed = await stub.ListApiKeys(pb.ListApiKeysRequest())
    assert [k.api_key_id for k in listed.api_keys] == [created.api_key.api_key_id]
    orgless = identity.stub(ApiKeyServiceStub, principal=Principal(subject="client:x", kind="service",
                                                                           roles=frozenset({"admin"})))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orgless.ListApiKeys(pb.ListApiKeysRequest())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(caught.value) == {"organization_id"}


async def test_bad_requests_name_their_fields(identity: InProcess[IdentityDeps]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await identity.stub(ApiKeyServiceStub, principal=TEST_PLATFORM_ADMIN).CreateApiKey(
            pb.CreateApiKeyRequest(scopes=["has space"]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"name", "scopes[0]"} <= bad_fields(caught.value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _key(identity, str(uuid.uuid4()))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_key_becomes_the_principal_claims_and_a_wrong_one_nothing(identity: InProcess[IdentityDeps]) -> None:
    org_id = await _org(identity)
    created = await _key(identity, org_id)
    check = await identity.deps.verifier.authenticate(created.secret)
    key_id = created.api_key.api_key_id
    assert check.allowed and check.claims == {"sub": f"apikey:{key_id}", "kind": "api_key", "org": org_id,
                                              "scope": "mesh agents.read", "key_id": key_id}
    assert Principal.from_claims(check.claims).api_key_id == key_id
    tampered = created.secret[:-1] + ("A" if created.secret[-1] != "A" else "B")
    for bad in (tampered, "pmk_000000000000_" + "x" * 43, "not a key", ""):
        refused = await identity.deps.verifier.authenticate(bad)
        assert (refused.claims is None and bad not in refused.reason) or bad == ""


async def test_a_revoked_key_stops_working_within_two_seconds_on_every_replica(
        identity: InProcess[IdentityDeps]) -> None:
    created = await _key(identity, await _org(identity))
    other = _other_replica(identity)
    assert (await other.authenticate(created.secret)).allowed  # its cache now holds the key
    revoked = await identity.stub(ApiKeyServiceStub, principal=TEST_PLATFORM_ADMIN).RevokeApiKey(
        pb.RevokeApiKeyRequest(api_key_id=created.api_key.api_key_id))
    assert revoked.api_key.status == identity_pb2.API_KEY_STATUS_REVOKED
    assert (await identity.deps.verifier.authenticate(created.secret)).claims is None  # this replica: at once
    started = time.monotonic()
    while (await other.authenticate(created.secret)).claims is not None:
        assert time.monotonic() - started < 2.0, "the other replica still accepts a revoked key"
        await asyncio.sleep(0.05)


async def test_a_key_over_its_rate_is_told_how_long_to_wait(identity: InProcess[IdentityDeps]) -> None:
    created = await _key(identity, await _org(identity), rate_limit_per_second=2.0, rate_limit_burst=2)
    verifier = _other_replica(identity)
    assert [(await verifier.authenticate(created.secret)).allowed for _ in range(2)] == [True, True]
    limited = await verifier.authenticate(created.secret)
    assert limited.claims is not None and 0 < limited.retry_after <= 0.5
    await asyncio.sleep(limited.retry_after + 0.05)
    assert (await verifier.authenticate(created.secret)).allowed


async def test_rotation_keeps_the_old_key_for_the_overlap(identity: InProcess[IdentityDeps]) -> None:
    created = await _key(identity, await _org(identity))
    stub = identity.stub(ApiKeyServiceStub, principal=TEST_PLATFORM_ADMIN)
    rotated = await stub.RotateApiKey(pb.RotateApiKeyRequest(api_key_id=created.api_key.api_key_id,
                                                             overlap=Duration(seconds=60)))
    assert rotated.secret != created.secret and rotated.api_key.rotated_from == created.api_key.api_key_id
    assert rotated.previous.status == identity_pb2.API_KEY_STATUS_ROTATED and rotated.previous.HasField("expire_time")
    verifier = _other_replica(identity)
    assert (await verifier.authenticate(created.secret)).allowed
    assert (await verifier.authenticate(rotated.secret)).allowed
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # the old one was rotated: rotate its successor
        await stub.RotateApiKey(pb.RotateApiKeyRequest(api_key_id=created.api_key.api_key_id))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    again = await stub.RotateApiKey(pb.RotateApiKeyRequest(api_key_id=rotated.api_key.api_key_id,
                                                           overlap=Duration(seconds=0)))
    fresh = _other_replica(identity)
    assert (await fresh.authenticate(rotated.secret)).claims is None  # no overlap: refused at once
    assert (await fresh.authenticate(again.secret)).allowed


async def test_an_expired_key_is_refused_and_listed_as_expired(identity: InProcess[IdentityDeps]) -> None:
    org_id = await _org(identity)
    created = await _key(identity, org_id, ttl=Duration(nanos=300_000_000))
    await asyncio.sleep(0.4)
    assert (await _other_replica(identity).authenticate(created.secret)).claims is None
    expired = await identity.stub(ApiKeyServiceStub, principal=TEST_PLATFORM_ADMIN).ListApiKeys(pb.ListApiKeysRequest(
        organization_id=org_id, status=identity_pb2.API_KEY_STATUS_EXPIRED))
    assert [k.api_key_id for k in expired.api_keys] == [created.api_key.api_key_id]


async def test_last_use_is_recorded(identity: InProcess[IdentityDeps]) -> None:
    created = await _key(identity, await _org(identity))
    verifier = _other_replica(identity)
    await verifier.authenticate(created.secret)
    await verifier.close()  # waits for the background write
    got = await identity.stub(ApiKeyServiceStub, principal=TEST_PLATFORM_ADMIN).GetApiKey(
        pb.GetApiKeyRequest(api_key_id=created.api_key.api_key_id))
    assert got.api_key.HasField("last_used_time")
