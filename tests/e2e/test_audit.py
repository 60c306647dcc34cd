"""The audit trail end to end (docs/authorization.md, "Audit trail"): a real mesh (identity + agent), every
call through the gateway.

A write and a denial each appear exactly once, with who, what, which resource, the decision, status, trace
id and source address; an admin of another organization sees none of them; a viewer (no audit.read) is
refused; `protomesh audit --action ...` prints them; the table refuses UPDATE and DELETE even to the
identity service's own role; and no secret (an API key's, a password) is in any audit row.

The refusals the gateway's ext_authz check answers (no replica sees those calls: no credential, an expired
token, an unknown or revoked API key, a key over its rate; REST and native gRPC) are each recorded once too,
by the identity service, with the RPC and the agent id of the path, the caller's trace and address, and
never the token or key presented.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import psycopg
import pytest

from chassis.tooling.supervisor import Mesh
from protomesh.agent.v1 import agent_service_pb2
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub
from tests.e2e.identity_support import (
    access_claims,
    admin_token,
    device_login,
    first,
    identity_call,
    identity_mesh,
    jwt_parts,
    method,
    rest_call,
    sign,
    signing_key,
)

PASSWORD = f"Audit-{uuid.uuid4().hex}"
KEYS = "protomesh.identity.v1.ApiKeyService"
CREATE_KEY = f"/{KEYS}/CreateApiKey"
REVOKE = f"/{KEYS}/RevokeApiKey"
AGENTS = "protomesh.agent.v1.AgentService"
UPDATE_AGENT = f"/{AGENTS}/UpdateAgent"
GET_AGENT = f"/{AGENTS}/GetAgent"
BAD_BEARER = 'Bearer realm="protomesh", error="invalid_token"'
LIST_RECORDS = method("ListAuditRecords")


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    with identity_mesh("agent", replicas=1) as started:
        yield started


@dataclass(frozen=True)
class User:
    """A signed-in user: subject, organization and access token."""

    subject: str
    organization: str
    token: str


def _user(mesh: Mesh, admin: str, organization: str, role: str, password: str = PASSWORD) -> User:
    email = f"audit-{role}-{uuid.uuid4().hex[:8]}@example.com"
    created = identity_call(mesh, "CreateUser", {"email": email, "password": password,
                                                 "display_name": f"audit {role}"}, token=admin)
    user_id = str(first(created, "user_id", "userId"))
    identity_call(mesh, "AddMember", {"organization_id": organization, "user_id": user_id,
                                      "role": f"ROLE_{role.upper()}"}, token=admin)
    token = device_login(mesh, email=email, password=password, scope="openid mesh")["access_token"]
    claims = jwt_parts(token)[1]
    assert claims["org"] == organization and claims["sub"] == user_id, claims
    return User(user_id, organization, token)


@pytest.fixture(scope="module")
def admin(mesh: Mesh) -> User:
    token = admin_token(mesh)
    claims = jwt_parts(token)[1]
    return User(claims["sub"], claims["org"], token)


@pytest.fixture(scope="module")
def viewer(mesh: Mesh, admin: User) -> User:
    return _user(mesh, admin.token, admin.organization, "viewer")


@pytest.fixture(scope="module")
def other_admin(mesh: Mesh, admin: User) -> User:
    """The admin of another organization (created by the platform admin)."""
    answer = identity_call(mesh, "CreateOrganization", {"name": f"audit-other-{uuid.uuid4().hex[:8]}"},
                           token=admin.token)
    return _user(mesh, admin.token, str(first(answer, "organization_id", "organizationId")), "admin")


def _records(mesh: Mesh, token: str, **filters: Any) -> list[dict[str, Any]]:
    """Every audit record the token's bearer sees with these filters (all pages)."""
    found: list[dict[str, Any]] = []
    page_token = ""
    while True:
        answer = rest_call(mesh, LIST_RECORDS, {**filters, "page_size": 200, "page_token": page_token}, token=token)
        assert answer.status == 200, answer.body
        found += answer.body.get("records", [])
        page_token = answer.body.get("page_info", answer.body.get("pageInfo", {})).get("next_page_token") or \
            answer.body.get("pageInfo", {}).get("nextPageToken", "")
        if not page_token:
            return found


def _eventually(probe: Callable[[], list[dict[str, Any]]], what: str, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"no audit record of {what} within {timeout} s")


def _field(record: dict[str, Any], snake: str) -> Any:
    camel = snake.split("_")[0] + "".join(p.title() for p in snake.split("_")[1:])
    return record.get(snake, record.get(camel))


@pytest.fixture(scope="module")
def write(mesh: Mesh, admin: User) -> dict[str, Any]:
    """A write with a resource id (RevokeApiKey), by the admin, and its audit record."""
    created = identity_call(mesh, "CreateApiKey", {"name": f"audited-{uuid.uuid4().hex[:8]}",
                                                   "scopes": ["agents.read"]}, token=admin.token)
    key_id = str(first(created, "api_key_id", "apiKeyId"))
    revoked = rest_call(mesh, method("RevokeApiKey"), {"api_key_id": key_id}, token=admin.token,
                        headers={"x-forwarded-for": "203.0.113.9"})
    assert revoked.status == 200, revoked.body
    records = _eventually(lambda: [r for r in _records(mesh, admin.token, action=REVOKE, principal=admin.subject)
                                   if _field(r, "resource") == key_id], "the revocation")
    return {"resource": key_id, "records": records}


@pytest.fixture(scope="module")
def denial(mesh: Mesh, admin: User, viewer: User) -> dict[str, Any]:
    """A denied write (a viewer creating an API key: 403, apikeys.write) and its audit record."""
    refused = rest_call(mesh, method("CreateApiKey"), {"name": f"denied-{uuid.uuid4().hex[:6]}",
                                                       "scopes": ["agents.read"]}, token=viewer.token)
    assert refused.status == 403, refused.body
    records = _eventually(lambda: _records(mesh, admin.token, action=CREATE_KEY, principal=viewer.subject),
                          "the denial")
    return {"records": records}


def test_a_write_is_recorded_once_with_its_fields(mesh: Mesh, admin: User, write: dict[str, Any]) -> None:
    time.sleep(2.0)  # a duplicate would have arrived by now (the relay and the consumer run continuously)
    records = [r for r in _records(mesh, admin.token, action=REVOKE, principal=admin.subject)
               if _field(r, "resource") == write["resource"]]
    assert len(records) == 1, records
    (record,) = records
    assert _field(record, "action") == REVOKE
    assert _field(record, "decision") == "AUDIT_DECISION_ALLOWED" and _field(record, "status") == "OK"
    assert _field(record, "principal_kind") == "AUDIT_PRINCIPAL_KIND_USER"
    assert _field(record, "organization_id") == admin.organization
    assert _field(record, "cross_org") is True, "the bootstrap admin is a platform admin"
    assert len(_field(record, "trace_id") or "") == 32, record
    assert _field(record, "service") == "identity" and _field(record, "time")
    # The client's own X-Forwarded-For is not its address: the gateway appends the address it saw, and that
    # last entry is the one recorded.
    assert _field(record, "source_address") and _field(record, "source_address") != "203.0.113.9", record


def test_a_denial_is_recorded_once_with_its_fields(mesh: Mesh, admin: User, viewer: User,
                                                    denial: dict[str, Any]) -> None:
    time.sleep(2.0)
    records = _records(mesh, admin.token, action=CREATE_KEY, principal=viewer.subject)
    assert len(records) == 1, records
    (record,) = records
    assert _field(record, "decision") == "AUDIT_DECISION_DENIED"
    assert _field(record, "status") == "PERMISSION_DENIED"
    assert _field(record, "organization_id") == viewer.organization
    assert not _field(record, "cross_org")
    assert _field(record, "principal_kind") == "AUDIT_PRINCIPAL_KIND_USER"
    # The filters: by decision, by a method name alone, by a service, by time.
    ids = [_field(record, "record_id")]
    assert [_field(r, "record_id") for r in _records(mesh, admin.token, decision="AUDIT_DECISION_DENIED",
                                                      principal=viewer.subject)] == ids
    assert [_field(r, "record_id") for r in _records(mesh, admin.token, action="CreateApiKey",
                                                      principal=viewer.subject)] == ids
    assert [_field(r, "record_id") for r in _records(mesh, admin.token, action=KEYS,
                                                      principal=viewer.subject)] == ids
    assert _records(mesh, admin.token, principal=viewer.subject, action=CREATE_KEY,
                    start_time=_field(record, "time")) != []
    assert _records(mesh, admin.token, principal=viewer.subject, action=CREATE_KEY,
                    end_time=_field(record, "time")) == []


def test_the_list_pages(mesh: Mesh, admin: User, write: dict[str, Any], denial: dict[str, Any]) -> None:
    first_page = rest_call(mesh, LIST_RECORDS, {"page_size": 1}, token=admin.token)
    assert first_page.status == 200 and len(first_page.body["records"]) == 1, first_page.body
    token = first_page.body["page_info"]["next_page_token"]
    second = rest_call(mesh, LIST_RECORDS, {"page_size": 1, "page_token": token}, token=admin.token)
    assert second.status == 200 and len(second.body["records"]) == 1, second.body
    assert second.body["records"][0]["record_id"] != first_page.body["records"][0]["record_id"]
    older, newer = second.body["records"][0]["time"], first_page.body["records"][0]["time"]
    assert older <= newer, "newest first"
    mismatched = rest_call(mesh, LIST_RECORDS, {"page_size": 1, "page_token": token, "action": REVOKE},
                           token=admin.token)
    assert mismatched.status == 400, "a token is bound to its filters"


def test_a_write_in_another_service_reaches_the_trail(mesh: Mesh, admin: User) -> None:
    """The agent service's replica records through its own outbox, on the one audit subject NATS lets every
    service publish."""
    registered = rest_call(mesh, method("RegisterAgent", "agent"), {"name": f"audited-{uuid.uuid4().hex[:8]}",
                                                                     "type": "calculator"}, token=admin.token)
    assert registered.status == 200, registered.body
    agent_id = str(first(registered.body, "agent_id", "agentId"))
    updated = rest_call(mesh, method("UpdateAgent", "agent"), {"agent_id": agent_id, "description": "audited"},
                        token=admin.token)
    assert updated.status == 200, updated.body
    records = _eventually(lambda: [r for r in _records(mesh, admin.token, action=UPDATE_AGENT)
                                   if _field(r, "resource") == agent_id], "the agent update")
    assert len(records) == 1 and _field(records[0], "service") == "agent", records


def test_an_admin_of_another_organization_sees_none_of_them(mesh: Mesh, other_admin: User, write: dict[str, Any],
                                                             denial: dict[str, Any]) -> None:
    theirs = _records(mesh, other_admin.token)
    ours = {_field(r, "record_id") for r in write["records"] + denial["records"]}
    assert not ours & {_field(r, "record_id") for r in theirs}
    assert all(_field(r, "organization_id") == other_admin.organization for r in theirs), theirs
    # Naming our organization is as if it did not exist.
    named = rest_call(mesh, LIST_RECORDS, {"organization_id": _field(write["records"][0], "organization_id")},
                      token=other_admin.token)
    assert named.status == 404, named.body


def test_a_viewer_may_not_read_the_trail(mesh: Mesh, admin: User, viewer: User) -> None:
    answer = rest_call(mesh, LIST_RECORDS, {}, token=viewer.token)
    assert answer.status == 403, answer.body
    assert "audit.read" in json.dumps(answer.body)
    # ... and that refusal is itself in the trail (a denied read).
    _eventually(lambda: _records(mesh, admin.token, action="ListAuditRecords", principal=viewer.subject),
                "the refused read")


def _cli(mesh: Mesh, *args: str) -> list[str]:
    return [sys.executable, "-m", "chassis.tooling.cli", "--state-dir", str(mesh.state_dir), "audit",
            "--gateway", mesh.gateway, *args]


def test_the_cli_prints_them(mesh: Mesh, write: dict[str, Any], viewer: User, denial: dict[str, Any]) -> None:
    printed = subprocess.run(_cli(mesh, "--action", REVOKE), capture_output=True, text=True, timeout=60, check=False)
    assert printed.returncode == 0, printed.stderr
    assert [line for line in printed.stdout.splitlines() if write["resource"] in line and "allowed" in line], \
        printed.stdout
    denied = subprocess.run(_cli(mesh, "--action", "CreateApiKey", "--principal", viewer.subject, "--json"),
                            capture_output=True, text=True, timeout=60, check=False)
    assert denied.returncode == 0, denied.stderr
    lines = [json.loads(line) for line in denied.stdout.splitlines()]
    assert [r["status"] for r in lines] == ["PERMISSION_DENIED"], lines


def test_the_cli_follows_new_records_and_stops_cleanly_on_ctrl_c(mesh: Mesh, admin: User) -> None:
    follower = subprocess.Popen(_cli(mesh, "--action", REVOKE, "-n", "0", "-f"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3.0)  # it has started polling
        created = identity_call(mesh, "CreateApiKey", {"name": f"followed-{uuid.uuid4().hex[:8]}",
                                                       "scopes": ["agents.read"]}, token=admin.token)
        key_id = str(first(created, "api_key_id", "apiKeyId"))
        assert rest_call(mesh, method("RevokeApiKey"), {"api_key_id": key_id}, token=admin.token).status == 200
        _eventually(lambda: [r for r in _records(mesh, admin.token, action=REVOKE)
                             if _field(r, "resource") == key_id], "the followed revocation")
        time.sleep(6.0)  # two more polls (2 s each), with room for a slow one on a loaded machine
    finally:
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=20)
    assert follower.returncode == 0, err
    assert "Traceback" not in err, err
    assert len([line for line in out.splitlines() if key_id in line]) == 1, (out, err)


def test_the_table_refuses_update_and_delete_even_to_its_own_role(mesh: Mesh, write: dict[str, Any]) -> None:
    own = mesh.service_database_urls.get("identity") or mesh.database_url
    for url in {own, mesh.database_url}:  # the service's role, and the mesh's superuser
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in ("UPDATE identity.audit_records SET status = 'OK'",
                              "DELETE FROM identity.audit_records", "TRUNCATE identity.audit_records"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
            count = conn.execute("SELECT count(*) FROM identity.audit_records").fetchone()
            assert count and count[0] > 0


def test_no_secret_is_in_any_audit_row(mesh: Mesh, admin: User, write: dict[str, Any]) -> None:
    created = identity_call(mesh, "CreateApiKey", {"name": f"audit-{uuid.uuid4().hex[:6]}",
                                                   "scopes": ["agents.read"]}, token=admin.token)
    secret = created["secret"]
    key_id = str(first(created, "api_key_id", "apiKeyId"))
    password = f"Secret-{uuid.uuid4().hex}"
    _user(mesh, admin.token, admin.organization, "member", password=password)
    # A call with the key, refused for want of a permission: its record names the key, never its secret.
    refused = rest_call(mesh, method("ListApiKeys"), {}, headers={"authorization": f"ApiKey {secret}"})
    assert refused.status == 403, refused.body
    records = _eventually(lambda: _records(mesh, admin.token, principal=f"apikey:{key_id}"), "the key's call")
    assert _field(records[0], "api_key_id") == key_id
    assert _field(records[0], "principal_kind") == "AUDIT_PRINCIPAL_KIND_API_KEY"
    _eventually(lambda: _records(mesh, admin.token, action="CreateUser", principal=admin.subject), "CreateUser")
    with psycopg.connect(mesh.database_url) as conn:
        rows = conn.execute("SELECT row_to_json(r)::text FROM identity.audit_records r").fetchall()
        envelopes = [bytes(e) for (e,) in conn.execute(
            "SELECT envelope FROM identity.outbox WHERE event_type = 'protomesh.identity.v1.AuditRecorded'")]
    assert rows
    for (text,) in rows:
        assert secret not in text and password not in text and PASSWORD not in text
        assert secret.split("_")[-1] not in text
    for envelope in envelopes:
        assert secret.encode() not in envelope and password.encode() not in envelope


# --- refusals the gateway answers (ext_authz: the identity service records them) -------------------------


@dataclass(frozen=True)
class Refused:
    """One call the gateway refused: the agent id in its path (the record's resource), its trace id and the
    credential it presented (never to be found in the trail)."""

    agent_id: str
    trace_id: str
    presented: str = ""


def _refused_get_agent(mesh: Mesh, status: int, headers: dict[str, str], presented: str = "") -> Refused:
    """GET /v1/agents/<new id> with `headers` and a new trace, refused with `status` before any replica."""
    call = Refused(str(uuid.uuid4()), uuid.uuid4().hex, presented)
    answer = rest_call(mesh, method("GetAgent", "agent"), {"agent_id": call.agent_id},
                       headers={**headers, "traceparent": f"00-{call.trace_id}-{uuid.uuid4().hex[:16]}-01",
                                "x-forwarded-for": "203.0.113.9"})
    assert answer.status == status, (answer.status, answer.body)
    return call


def _new_key(mesh: Mesh, admin: User, **fields: Any) -> tuple[str, str]:
    created = identity_call(mesh, "CreateApiKey", {"name": f"refused-{uuid.uuid4().hex[:8]}",
                                                   "scopes": ["agents.read"], **fields}, token=admin.token)
    return str(first(created, "api_key_id", "apiKeyId")), str(created["secret"])


@pytest.fixture(scope="module")
def refusals(mesh: Mesh, admin: User) -> dict[str, Refused]:
    """One of each refusal the gateway's check answers, made once for the tests below."""
    now = int(time.time())
    expired = sign(signing_key(mesh), access_claims(mesh, exp=now - 600, iat=now - 900, nbf=now - 900))
    unknown_key = f"pmk_{uuid.uuid4().hex[:12]}_{uuid.uuid4().hex}{uuid.uuid4().hex[:11]}"
    revoked_id, revoked_key = _new_key(mesh, admin)
    assert rest_call(mesh, method("RevokeApiKey"), {"api_key_id": revoked_id}, token=admin.token).status == 200
    busy_id, busy_key = _new_key(mesh, admin, rate_limit_per_second=0.01, rate_limit_burst=1)
    calls = {
        "anonymous": _refused_get_agent(mesh, 401, {}),
        "expired token": _refused_get_agent(mesh, 401, {"authorization": f"Bearer {expired}"}, expired),
        "unknown key": _refused_get_agent(mesh, 401, {"x-api-key": unknown_key}, unknown_key),
    }
    # A revoked key stops on every replica within 2 s (the key cache): until then it may still pass.
    deadline = time.monotonic() + 10
    while True:
        call = Refused(str(uuid.uuid4()), uuid.uuid4().hex, revoked_key)
        answer = rest_call(mesh, method("GetAgent", "agent"), {"agent_id": call.agent_id},
                           headers={"authorization": f"ApiKey {revoked_key}",
                                    "traceparent": f"00-{call.trace_id}-{uuid.uuid4().hex[:16]}-01"})
        if answer.status == 401:
            calls[f"revoked key apikey:{revoked_id}"] = call
            break
        assert time.monotonic() < deadline, f"the revoked key still passes: {answer.status}"
        time.sleep(0.5)
    # The first call takes the key's one token (not found: the agent does not exist), the second is over the rate.
    assert rest_call(mesh, method("GetAgent", "agent"), {"agent_id": str(uuid.uuid4())},
                     headers={"x-api-key": busy_key}).status == 404
    calls[f"key over its rate apikey:{busy_id}"] = _refused_get_agent(mesh, 429, {"x-api-key": busy_key}, busy_key)
    return calls


def _only_record(mesh: Mesh, admin: User, call: Refused) -> dict[str, Any]:
    """The one record of a refused GetAgent (found by its agent id), after a duplicate would have arrived."""
    def found() -> list[dict[str, Any]]:
        return [r for r in _records(mesh, admin.token, action=GET_AGENT, decision="AUDIT_DECISION_DENIED")
                if _field(r, "resource") == call.agent_id]

    _eventually(found, f"the refused call on {call.agent_id}")
    time.sleep(1.0)
    records = found()
    assert len(records) == 1, records
    return records[0]


@pytest.mark.parametrize("kind", ["anonymous", "expired token", "unknown key"])
def test_a_refusal_without_a_known_principal_is_recorded_once(mesh: Mesh, admin: User,
                                                               refusals: dict[str, Refused], kind: str) -> None:
    record = _only_record(mesh, admin, refusals[kind])
    assert _field(record, "decision") == "AUDIT_DECISION_DENIED"
    assert _field(record, "status") == "UNAUTHENTICATED"
    assert _field(record, "principal_kind") == "AUDIT_PRINCIPAL_KIND_ANONYMOUS"
    assert not _field(record, "principal") and not _field(record, "organization_id"), record
    assert _field(record, "action") == GET_AGENT and _field(record, "service") == "identity"
    assert _field(record, "trace_id") == refusals[kind].trace_id, record
    # The gateway's own entry, not the one the client sent.
    assert _field(record, "source_address") and _field(record, "source_address") != "203.0.113.9", record


def test_a_refusal_of_a_known_key_names_the_key_and_its_organization(mesh: Mesh, admin: User,
                                                                     refusals: dict[str, Refused]) -> None:
    for kind, status in (("revoked key", "UNAUTHENTICATED"), ("key over its rate", "RESOURCE_EXHAUSTED")):
        ((name, call),) = [(n, c) for n, c in refusals.items() if n.startswith(kind)]
        subject = name.rsplit(" ", 1)[1]
        record = _only_record(mesh, admin, call)
        assert _field(record, "status") == status and _field(record, "decision") == "AUDIT_DECISION_DENIED"
        assert _field(record, "principal") == subject, record
        assert _field(record, "principal_kind") == "AUDIT_PRINCIPAL_KIND_API_KEY"
        assert _field(record, "api_key_id") == subject.removeprefix("apikey:")
        assert _field(record, "organization_id") == admin.organization
        # The key's organization's admin finds it by the key, like any of the key's calls.
        assert [_field(r, "record_id") for r in _records(mesh, admin.token, principal=subject, action=GET_AGENT)
                if _field(r, "resource") == call.agent_id] == [_field(record, "record_id")]


def test_a_refused_native_grpc_call_is_recorded_once(mesh: Mesh, admin: User) -> None:
    """No credential, then a bad token, over native gRPC: UNAUTHENTICATED, each recorded once (found by trace)."""
    with grpc.insecure_channel(mesh.gateway) as channel:
        agents = AgentServiceStub(channel)
        traces = []
        for metadata in ([], [("authorization", "Bearer not-a-token")]):
            trace = uuid.uuid4().hex
            traces.append(trace)
            with pytest.raises(grpc.RpcError) as refused:
                agents.GetAgent(agent_service_pb2.GetAgentRequest(agent_id="x"), timeout=10,
                                metadata=[*metadata, ("traceparent", f"00-{trace}-{uuid.uuid4().hex[:16]}-01")])
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    for trace in traces:
        def found(trace: str = trace) -> list[dict[str, Any]]:
            return [r for r in _records(mesh, admin.token, action=GET_AGENT, decision="AUDIT_DECISION_DENIED")
                    if _field(r, "trace_id") == trace]

        _eventually(found, f"the gRPC refusal of trace {trace}")
        time.sleep(1.0)
        assert len(found()) == 1, found()


def test_a_bad_token_is_answered_like_before(mesh: Mesh) -> None:
    """The identity service answers a failed token now (so it is recorded): the same 401 and challenge."""
    answer = rest_call(mesh, method("GetAgent", "agent"), {"agent_id": "x"},
                       headers={"authorization": "Bearer not-a-token"})
    assert answer.status == 401 and answer.headers.get("www-authenticate") == BAD_BEARER, answer.headers
    assert answer.body["code"] == 16, answer.body


def test_no_presented_token_or_key_is_in_any_audit_row(mesh: Mesh, admin: User,
                                                       refusals: dict[str, Refused]) -> None:
    for call in refusals.values():
        _only_record(mesh, admin, call)
    with psycopg.connect(mesh.database_url) as conn:
        rows = [text for (text,) in conn.execute("SELECT row_to_json(r)::text FROM identity.audit_records r")]
        envelopes = [bytes(e) for (e,) in conn.execute(
            "SELECT envelope FROM identity.outbox WHERE event_type = 'protomesh.identity.v1.AuditRecorded'")]
    secrets = [call.presented for call in refusals.values() if call.presented]
    assert len(secrets) == 4
    for secret in secrets:
        # The whole credential, and its secret part alone: a JWT's signature, a key's part after pmk_<prefix>_.
        part = secret.rsplit(".", 1)[1] if secret.count(".") == 2 else secret[len("pmk_") + 13:]
        assert len(part) >= 40, part
        for text in (secret, part):
            assert not any(text in row for row in rows), f"a presented credential is in an audit row: {text}"
            assert not any(text.encode() in envelope for envelope in envelopes)


def test_a_platform_admins_read_is_recorded_as_cross_org(mesh: Mesh, admin: User, viewer: User) -> None:
    """A platform admin acts across organizations: its reads are audited too (a member's are not)."""
    get_key = f"/{KEYS}/GetApiKey"
    created = identity_call(mesh, "CreateApiKey", {"name": f"read-{uuid.uuid4().hex[:8]}",
                                                   "scopes": ["agents.read"]}, token=admin.token)
    key_id = str(first(created, "api_key_id", "apiKeyId"))
    assert rest_call(mesh, method("GetApiKey"), {"api_key_id": key_id}, token=admin.token).status == 200
    records = _eventually(lambda: [r for r in _records(mesh, admin.token, action=get_key, principal=admin.subject)
                                   if _field(r, "resource") == key_id], "the platform admin's read")
    time.sleep(2.0)  # a duplicate would have arrived by now
    records = [r for r in _records(mesh, admin.token, action=get_key, principal=admin.subject)
               if _field(r, "resource") == key_id]
    assert len(records) == 1, records
    assert _field(records[0], "cross_org") is True
    assert _field(records[0], "decision") == "AUDIT_DECISION_ALLOWED"
