"""A signing key rotation under a bounded stream of authenticated calls: no call fails.

Two threads call the agent service through the gateway for ~10 s (one over REST, one over native
gRPC), each getting a fresh client-credentials token every few calls; the key is rotated with
`protomesh keys rotate` in the middle. Afterwards the keys are next/current/retiring as designed
(docs/identity.md), the JWKS publishes exactly those three, tokens signed after the rotation carry
the promoted key's kid, a token signed by the old key before the rotation still passes, and the
retiring key leaves the JWKS once the last token it signed has expired (a 12 s token lifetime here).

The publish lead is 2 s here (60 s by default) so the test can rotate soon after start: the `next`
key exists since the identity service's first start, so the gateway had it in its JWKS from its first
fetch; a second rotation that soon would not be safe, and the test does one.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator

import grpc
import pytest
import requests

from chassis.tooling.mesh_testing import eventually
from chassis.tooling.supervisor import Mesh
from protomesh.agent.v1 import agent_service_pb2 as pb
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub
from tests.e2e.identity_support import (
    admin_token,
    base_url,
    first,
    identity_call,
    identity_mesh,
    jwt_parts,
    token_request,
)

STREAM_SECONDS = 10.0
ROTATE_AFTER = 3.0
CALLS_PER_TOKEN = 5
ACCESS_TOKEN_TTL = 12
"""Short, so the retiring key is seen leaving the JWKS once the last token it signed has expired."""


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    """Two identity replicas: one rotates, the other learns of it on its next key reload (every 3 s) and
    meanwhile still signs with the retiring key, which stays published."""
    env = {"IDENTITY_KEY_PUBLISH_LEAD": "2s", "IDENTITY_ACCESS_TOKEN_TTL": f"{ACCESS_TOKEN_TTL}s"}
    with identity_mesh("agent", identity_replicas=2, env=env) as started:
        yield started


@pytest.fixture(scope="module")
def service_client(mesh: Mesh) -> tuple[str, str]:
    """A service account (client credentials) the stream takes its tokens from."""
    answer = identity_call(mesh, "RegisterClient", {
        "name": "rotation-stream", "grant_types": ["client_credentials"], "scopes": ["mesh"],
        "roles": ["ROLE_MEMBER"]}, token=admin_token(mesh))
    return first(answer, "client_id"), first(answer, "client_secret")


def fresh_token(mesh: Mesh, client: tuple[str, str]) -> str:
    reply = token_request(mesh, {"grant_type": "client_credentials", "scope": "mesh"}, auth=client)
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["access_token"]
    return token


def keys_by_state(mesh: Mesh) -> dict[str, str]:
    """state name (next/current/retiring) -> kid, from SigningKeyService."""
    listed = identity_call(mesh, "ListSigningKeys", {}, token=admin_token(mesh))
    return {k["state"].removeprefix("SIGNING_KEY_STATE_").lower(): k["kid"] for k in listed.get("signingKeys",
                                                                                             listed.get("signing_keys",
                                                                                                        []))}


def jwks_kids(mesh: Mesh) -> set[str]:
    return {k["kid"] for k in requests.get(base_url(mesh) + "/oauth2/jwks", timeout=10).json()["keys"]}


def rotate(mesh: Mesh) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chassis.tooling.cli", "--state-dir", str(mesh.state_dir),
                           "keys", "rotate"], capture_output=True, text=True, timeout=60)


class Stream(threading.Thread):
    """Calls ListAgents until told to stop, with a new token every CALLS_PER_TOKEN calls."""

    def __init__(self, mesh: Mesh, client: tuple[str, str], over: str) -> None:
        super().__init__(daemon=True, name=f"stream-{over}")
        self.mesh, self.client, self.over = mesh, client, over
        self.stop = threading.Event()
        self.calls = 0
        self.failures: list[str] = []
        self.kids: Counter[str] = Counter()

    def call(self, stub: AgentServiceStub, token: str) -> None:
        if self.over == "rest":
            reply = requests.get(base_url(self.mesh) + "/v1/agents", headers={"authorization": f"Bearer {token}"},
                                 timeout=10)
            if reply.status_code != 200:
                self.failures.append(f"REST {reply.status_code}: {reply.text[:200]}")
            return
        try:
            stub.ListAgents(pb.ListAgentsRequest(), metadata=[("authorization", f"Bearer {token}")], timeout=10)
        except grpc.RpcError as error:
            self.failures.append(f"gRPC {error.code()}: {error.details()}")

    def run(self) -> None:
        with grpc.insecure_channel(self.mesh.gateway) as channel:
            stub = AgentServiceStub(channel)
            token = ""
            while not self.stop.is_set():
                if self.calls % CALLS_PER_TOKEN == 0:
                    try:
                        token = fresh_token(self.mesh, self.client)
                    except AssertionError as error:
                        self.failures.append(f"token: {error}")
                        continue
                    self.kids[jwt_parts(token)[0]["kid"]] += 1
                self.call(stub, token)
                self.calls += 1


def test_a_rotation_under_a_stream_of_calls(mesh: Mesh, service_client: tuple[str, str]) -> None:
    before = keys_by_state(mesh)
    assert set(before) == {"next", "current"}, before
    assert jwks_kids(mesh) == set(before.values())

    streams = [Stream(mesh, service_client, "rest"), Stream(mesh, service_client, "grpc")]
    started = time.monotonic()
    for stream in streams:
        stream.start()
    time.sleep(ROTATE_AFTER)
    # Taken just before the rotation, so it is still valid after the CLI ran (seconds on a busy machine).
    old_token = fresh_token(mesh, service_client)
    assert jwt_parts(old_token)[0]["kid"] == before["current"]
    rotated = rotate(mesh)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    # A token the old key signed before the rotation keeps working (it has not expired yet).
    sent_at = time.time()
    assert sent_at < jwt_parts(old_token)[1]["exp"], "the CLI took longer than a token's lifetime"
    reply = requests.get(base_url(mesh) + "/v1/agents", headers={"authorization": f"Bearer {old_token}"},
                         timeout=10)
    assert reply.status_code == 200, reply.text
    time.sleep(max(0.0, STREAM_SECONDS - (time.monotonic() - started)))
    for stream in streams:
        stream.stop.set()
    for stream in streams:
        stream.join(timeout=30)

    calls = sum(s.calls for s in streams)
    failures = [f for s in streams for f in s.failures]
    print(f"{calls} calls in {STREAM_SECONDS:.0f}s across the rotation, {len(failures)} failed")
    assert calls > 50 and not failures, failures[:10]

    after = keys_by_state(mesh)
    assert set(after) == {"next", "current", "retiring"}, after
    assert after["current"] == before["next"] and after["retiring"] == before["current"]
    assert after["next"] not in before.values()
    # Either replica may answer the JWKS fetch; the one that did not rotate publishes the new `next` key on its
    # next key reload (every 3 s). That lag is safe: `next` signs nothing until IDENTITY_KEY_PUBLISH_LEAD has
    # passed. On a busy machine the CLI can return with less than a reload interval left in the stream.
    def published_by_every_replica() -> list[set[str]]:
        # Four fetches: Envoy's round robin over the two identity replicas asks each twice.
        fetched = [jwks_kids(mesh) for _ in range(4)]
        return fetched if all(after["next"] in kids for kids in fetched) else []

    fetched = eventually(published_by_every_replica, timeout=10, interval=0.3,
                         what="every identity replica to publish the new next key")
    for published in fetched:
        assert {after["current"], after["next"]} <= published <= set(after.values()), (published, after)

    kids: Counter[str] = sum((s.kids for s in streams), Counter())
    assert kids[before["current"]] > 0 and kids[after["current"]] > 0, kids
    assert set(kids) <= {before["current"], after["current"]}, "the next key never signs"
    assert jwt_parts(fresh_token(mesh, service_client))[0]["kid"] == after["current"]

    # Then the retiring key goes: once the last token it could have signed has expired (retired + TTL).
    eventually(lambda: before["current"] not in jwks_kids(mesh), timeout=ACCESS_TOKEN_TTL + 10, interval=0.5,
               what="the retiring key to leave the JWKS")
    assert set(keys_by_state(mesh)) == {"next", "current"}
