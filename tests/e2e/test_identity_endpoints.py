"""Every endpoint of the catalog through the gateway, with and without credentials.

Every RPC with a REST route (from chassis.tooling.catalog, so a new endpoint is covered without
editing this file) is called without a credential (401 with a Bearer challenge unless the contract
declares it public), with the admin's bearer token and with an API key in both places the design
accepts it (`x-api-key`, `Authorization: ApiKey`): never 401. Over native gRPC the same split is
UNAUTHENTICATED or not. The requests carry placeholder ids and empty bodies: what is checked is
the gateway's and the chassis' authentication, not the answer (400/404 are fine). Then the API key
lifecycle at the edge: a revoked key stops within seconds, a key over its rate gets 429 with
Retry-After, and a client-sent x-protomesh-claims header never stands in for a credential.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import requests
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from chassis.tooling.catalog import MeshMethod, load_catalog
from chassis.tooling.mesh_testing import eventually
from chassis.tooling.supervisor import Mesh
from tests.e2e.identity_support import (
    Answer,
    admin_token,
    b64url,
    base_url,
    first,
    identity_call,
    identity_mesh,
    is_http_served,
    is_public,
    jwt_parts,
    rest_call,
)

PLACEHOLDER_ID = "00000000-0000-4000-8000-000000000000"
ENDPOINTS = [m for m in load_catalog().methods() if m.http is not None and not is_http_served(m)]
GRPC_METHODS = [m for m in load_catalog().methods()
                if not m.client_streaming and not m.server_streaming and not is_http_served(m)]


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    """Every service, one replica each, and two of identity (a key revoked through one must stop at the
    other too: each caches verified keys briefly). A long publish lead: a swept RotateSigningKey must
    not rotate twice in a row (the second would promote a key the gateway may not have fetched yet)."""
    with identity_mesh("agent", "context", "integration", "notification", identity_replicas=2,
                       env={"IDENTITY_KEY_PUBLISH_LEAD": "60s"}) as started:
        yield started


@pytest.fixture(scope="module")
def token(mesh: Mesh) -> str:
    return admin_token(mesh)


def create_key(mesh: Mesh, token: str, **limits: Any) -> tuple[str, str]:
    """(api_key_id, secret) of a new key with scope mesh."""
    answer = identity_call(mesh, "CreateApiKey", {"name": f"key-{uuid.uuid4().hex[:8]}", "scopes": ["mesh"],
                                                  **limits}, token=token)
    key_id, secret = first(answer, "api_key_id", "apiKeyId"), answer.get("secret")
    assert key_id and secret, answer
    return key_id, secret


@pytest.fixture(scope="module")
def api_key(mesh: Mesh, token: str) -> str:
    """A key with a rate far above what the sweep sends."""
    return create_key(mesh, token, rate_limit_per_second=10000, rate_limit_burst=100000)[1]


def placeholders(rpc: MeshMethod) -> dict[str, Any]:
    """A value for every path variable of the route: an id-shaped one for ids."""
    assert rpc.http is not None
    names = [part.split("=")[0].strip("{}") for part in rpc.http.path.split("/") if part.startswith("{")]
    return {name: PLACEHOLDER_ID if name.endswith("id") else "placeholder" for name in names}


def sweep(mesh: Mesh, **credentials: Any) -> dict[str, Answer]:
    return {rpc.grpc_path: rest_call(mesh, rpc, placeholders(rpc), **credentials) for rpc in ENDPOINTS}


def test_the_sweep_covers_every_service() -> None:
    assert {m.service.split(".")[1] for m in ENDPOINTS} >= {"agent", "context", "integration", "notification",
                                                            "identity"}
    assert len(ENDPOINTS) > 60


def test_without_a_credential_only_public_endpoints_answer(mesh: Mesh) -> None:
    answers = sweep(mesh)
    wrong = {path: a.status for path, a in answers.items()
             if (a.status == 401) == is_public(next(m for m in ENDPOINTS if m.grpc_path == path))}
    assert not wrong, f"401 on a public endpoint or not 401 on a protected one: {wrong}"
    for path, answer in answers.items():
        if answer.status == 401:
            assert answer.headers.get("WWW-Authenticate", "").startswith("Bearer"), path
    assert any(is_public(m) for m in ENDPOINTS) and not all(is_public(m) for m in ENDPOINTS)


def test_with_a_token_no_endpoint_is_401(mesh: Mesh, token: str) -> None:
    answers = sweep(mesh, token=token)
    assert not {p: (a.status, a.body) for p, a in answers.items() if a.status == 401}
    assert not {p: (a.status, a.body) for p, a in answers.items() if a.status >= 500 and a.status != 503}


@pytest.mark.parametrize("place", ["x-api-key", "authorization"])
def test_with_an_api_key_no_endpoint_is_401(mesh: Mesh, api_key: str, place: str) -> None:
    header = {"x-api-key": api_key} if place == "x-api-key" else {"authorization": f"ApiKey {api_key}"}
    answers = sweep(mesh, headers=header)
    assert not {p: (a.status, a.body) for p, a in answers.items() if a.status == 401}


def grpc_code(channel: grpc.Channel, rpc: MeshMethod, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.StatusCode:
    """Call with an empty request message (valid bytes for every message type)."""
    call: Any = channel.unary_unary(rpc.grpc_path, request_serializer=None, response_deserializer=None)
    try:
        call(b"", metadata=metadata, timeout=10)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_native_grpc_needs_a_credential_too(mesh: Mesh, token: str, api_key: str) -> None:
    with grpc.insecure_channel(mesh.gateway) as channel:
        for rpc in GRPC_METHODS:
            anonymous = grpc_code(channel, rpc)
            assert (anonymous == grpc.StatusCode.UNAUTHENTICATED) != is_public(rpc), (rpc.grpc_path, anonymous)
            for metadata in ((("authorization", f"Bearer {token}"),), (("x-api-key", api_key),),
                             (("authorization", f"ApiKey {api_key}"),)):
                code = grpc_code(channel, rpc, metadata)
                assert code != grpc.StatusCode.UNAUTHENTICATED, (rpc.grpc_path, metadata[0][0], code)


def agents_with_key(mesh: Mesh, key: str) -> requests.Response:
    return requests.get(base_url(mesh) + "/v1/agents", headers={"x-api-key": key}, timeout=10)


def test_a_revoked_key_stops_within_seconds(mesh: Mesh, token: str) -> None:
    key_id, secret = create_key(mesh, token)
    # Used through both identity replicas just before the revocation, so each holds it verified in its cache.
    assert [agents_with_key(mesh, secret).status_code for _ in range(6)] == [200] * 6
    identity_call(mesh, "RevokeApiKey", {"api_key_id": key_id}, token=token)
    revoked_at = time.monotonic()

    def refused_everywhere() -> bool:
        """Refused by every identity replica (the gateway alternates between them), in both headers."""
        answers = [agents_with_key(mesh, secret).status_code for _ in range(4)]
        answers += [requests.get(base_url(mesh) + "/v1/agents", headers={"authorization": f"ApiKey {secret}"},
                                 timeout=10).status_code for _ in range(4)]
        return set(answers) == {401}

    eventually(refused_everywhere, timeout=5, interval=0.2, what="the revoked key to be refused by every replica")
    print(f"revoked key refused everywhere after {time.monotonic() - revoked_at:.2f}s")
    unknown = agents_with_key(mesh, "pmk_" + uuid.uuid4().hex)
    assert unknown.status_code == 401 and unknown.headers.get("WWW-Authenticate")


def test_a_key_over_its_rate_is_429_with_retry_after(mesh: Mesh, token: str) -> None:
    _, secret = create_key(mesh, token, rate_limit_per_second=1, rate_limit_burst=2)
    answers = [agents_with_key(mesh, secret) for _ in range(8)]
    statuses = [a.status_code for a in answers]
    assert statuses[0] == 200 and 429 in statuses, statuses
    limited = next(a for a in answers if a.status_code == 429)
    assert int(limited.headers["Retry-After"]) >= 1
    # The bucket refills: after Retry-After the key works again.
    time.sleep(int(limited.headers["Retry-After"]) + 0.2)
    assert agents_with_key(mesh, secret).status_code == 200


def test_a_client_sent_claims_header_is_no_credential(mesh: Mesh) -> None:
    forged = b64url(json.dumps({"iss": base_url(mesh), "aud": "protomesh", "sub": "forged", "kind": "user",
                                "admin": True, "roles": ["owner"], "scope": "mesh",
                                "exp": int(time.time()) + 300}).encode())
    reply = requests.get(base_url(mesh) + "/v1/agents", headers={"x-protomesh-claims": forged}, timeout=10)
    assert reply.status_code == 401, reply.text
    rpc = load_catalog().service("agent").method("ListAgents")
    with grpc.insecure_channel(mesh.gateway) as channel:
        assert grpc_code(channel, rpc, (("x-protomesh-claims", forged),)) == grpc.StatusCode.UNAUTHENTICATED


def test_a_rotation_before_the_next_key_was_published_for_the_lead_is_refused(mesh: Mesh, token: str) -> None:
    """The mesh started well under the 60 s lead ago: promoting its next key now could reach a gateway
    that has not fetched it, so the rotation is FAILED_PRECONDITION (400), saying when it may run."""
    answer = rest_call(mesh, load_catalog().service("identity").method("RotateSigningKey"), {}, token=token)
    assert answer.status == 400, answer
    assert answer.body["code"] in (9, "FAILED_PRECONDITION"), answer.body


def test_reflection_needs_no_credential(mesh: Mesh) -> None:
    """Public by design (docs/identity.md): grpcurl's list/describe work through the gateway before anyone
    logs in. (grpc.health.v1 is public on the replicas, for Envoy's own health checks; the gateway does
    not route it.)"""
    with grpc.insecure_channel(mesh.gateway) as channel:
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                                  timeout=10)
        names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert {"protomesh.agent.v1.AgentService", "protomesh.identity.v1.ApiKeyService"} <= names


def test_a_client_sent_claims_header_never_replaces_the_real_principal(mesh: Mesh, token: str, api_key: str) -> None:
    """With a real credential the forged header is dropped: a context's owner is the caller's real subject."""
    forged = b64url(json.dumps({"sub": "forged-admin", "kind": "user", "admin": True, "roles": ["owner"],
                                "scope": "mesh"}).encode())
    create = load_catalog().service("context").method("CreateContext")
    for credential, expected in ((f"Bearer {token}", jwt_parts(token)[1]["sub"]), (f"ApiKey {api_key}", "apikey:")):
        answer = rest_call(mesh, create, {"name": f"owned-{uuid.uuid4().hex[:6]}", "type": "session"},
                           headers={"authorization": credential, "x-protomesh-claims": forged})
        assert answer.status == 200, answer.body
        owner = answer.body["context"]["owner"]
        assert owner != "forged-admin" and owner.startswith(expected), owner
