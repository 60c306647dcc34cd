"""Every IntegrationService operation as REST/JSON through Envoy, against real external systems on loopback:
our fault-injecting HTTP API, a PostgreSQL and a nats-server of their own (never the mesh's: those are
refused), an aiosmtpd SMTP server, a local directory and moto's S3 server. Loopback is admitted for them
with INTEGRATION_ALLOWED_TARGETS=127.0.0.1; the mesh's own PostgreSQL and NATS stay refused on it. The last
test scans every response, every log and the table for the secrets."""

from __future__ import annotations

import base64
import json
import shutil
import stat
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest

from chassis.tooling.infra.nats import NatsProcess, NatsUser
from chassis.tooling.infra.postgres import PostgresProcess
from chassis.tooling.mesh_testing import Reply, RestClient, eventually, running_mesh
from chassis.tooling.supervisor import Mesh
from tests.support.errors import violations
from tests.support.fault_server import FaultServer, fault_server
from tests.support.integration_servers import SmtpSink, s3_server, smtp_server

SECRET_TOKEN = f"tok-{uuid.uuid4().hex}"
CLIENT_SECRET = f"cs-{uuid.uuid4().hex}"
SMTP_PASSWORD = f"smtp-{uuid.uuid4().hex}"
PG_PASSWORD = f"pg-{uuid.uuid4().hex}"
S3_SECRET = f"s3-{uuid.uuid4().hex}"
NATS_PASSWORD = f"nats-{uuid.uuid4().hex}"
SECRETS = (SECRET_TOKEN, CLIENT_SECRET, SMTP_PASSWORD, PG_PASSWORD, S3_SECRET, NATS_PASSWORD)
BUCKET = "protomesh-test"
OWN_INFRASTRUCTURE = "the mesh's own"


class RecordingClient(RestClient):
    """A RestClient that keeps every response body, for the final scan."""

    bodies: list[str] = []

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Reply:
        reply = super().call(method, path, body, **kwargs)
        RecordingClient.bodies.append(json.dumps(reply.body))
        return reply


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    """PostgreSQL, NATS, one integration replica (its breakers, buckets and caches are per replica) and Envoy.

    No key is configured, so the replica generates its key file under the mesh's state dir.
    """
    # A state dir of its own under /tmp, not pytest's tmp_path: PostgreSQL's system user must reach it.
    with running_mesh(only=["integration"], replicas=1,
                      extra_env={"INTEGRATION_PROBE_TIMEOUT_SECONDS": "2",
                                 "INTEGRATION_ALLOWED_TARGETS": "127.0.0.1"}) as started:
        yield started


@dataclass(frozen=True)
class ExternalDb:
    """A database on a PostgreSQL that is not the mesh's, with roles an integration may and may not use."""

    host: str
    port: int
    dbname: str
    reader: str
    filer: str
    superuser_password: str


@pytest.fixture(scope="module")
def external_db(postgres: PostgresProcess) -> Iterator[ExternalDb]:
    """The test session's PostgreSQL: a database with a table, a plain reader role (SELECT only) and a role
    with pg_read_server_files (refused like the superuser)."""
    suffix = uuid.uuid4().hex[:8]
    db = ExternalDb(postgres.host, postgres.port, f"ext_{suffix}", f"reader_{suffix}", f"filer_{suffix}",
                    postgres.password)
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db.dbname}")
        conn.execute(f"CREATE ROLE {db.reader} LOGIN PASSWORD '{PG_PASSWORD}'")
        conn.execute(f"CREATE ROLE {db.filer} LOGIN PASSWORD '{PG_PASSWORD}' IN ROLE pg_read_server_files")
    with psycopg.connect(postgres.url_for(db.dbname), autocommit=True) as conn:
        conn.execute("CREATE TABLE items (n int, name text)")
        conn.execute("INSERT INTO items SELECT n, 'item ' || n FROM generate_series(1, 10) n")
        conn.execute(f"GRANT SELECT ON items TO {db.reader}, {db.filer}")
    try:
        yield db
    finally:
        with psycopg.connect(postgres.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db.dbname} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {db.reader}")
            conn.execute(f"DROP ROLE IF EXISTS {db.filer}")


@pytest.fixture(scope="module")
def external_nats() -> Iterator[NatsProcess]:
    """A nats-server of its own (not the mesh's), admitting one user."""
    folder = Path(tempfile.mkdtemp(prefix="protomesh-test-ext-nats-"))
    server = NatsProcess(folder / "nats", durable=False, users=[NatsUser("app", NATS_PASSWORD)])
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> RecordingClient:
    return RecordingClient(f"http://{mesh.gateway}", timeout=30, token=mesh.token)


@pytest.fixture(scope="module")
def api() -> Iterator[FaultServer]:
    """Our HTTP API: bearer token or OAuth2 client credentials."""
    with fault_server(token=SECRET_TOKEN, client_id="svc", client_secret=CLIENT_SECRET) as server:
        yield server


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    with smtp_server("mailer", SMTP_PASSWORD) as sink:
        yield sink


def ok(reply: Reply) -> Any:
    assert reply.status == 200, (reply.status, reply.body)
    return reply.body


def create(rest: RestClient, name: str, kind: str, config: dict, credentials: dict | None = None,
           **extra: Any) -> dict:
    body = {"name": name, "kind": f"INTEGRATION_KIND_{kind}", "config": config, **extra}
    if credentials:
        body["credentials"] = credentials
    return ok(rest.post("/v1/integrations", body))["integration"]


def http_config(api: FaultServer, **extra: Any) -> dict:
    return {"base_url": api.url, "auth": "bearer", "health_path": "/health", "test_path": "/v1/items/probe", **extra}


def invoke(rest: RestClient, integration_id: str, operation: str, parameters: dict, **extra: Any) -> Reply:
    return rest.post(f"/v1/integrations/{integration_id}/invoke",
                     {"operation": operation, "parameters": parameters, **extra})


# --- CRUD ----------------------------------------------------------------------------------------


def test_crud_round_trip_never_returns_credentials(rest: RestClient, api: FaultServer) -> None:
    created = create(rest, "Payments API", "HTTP", http_config(api), {"token": SECRET_TOKEN},
                     description="charges", labels={"team": "billing"})
    assert uuid.UUID(created["integration_id"])
    assert created["has_credentials"] is True and created["credential_keys"] == ["token"]
    assert created["enabled"] is True and created["version"] == "1" and created["labels"] == {"team": "billing"}
    assert "credentials" not in created
    path = f"/v1/integrations/{created['integration_id']}"
    assert ok(rest.get(path))["integration"]["name"] == "Payments API"

    updated = ok(rest.put(path, {"description": "charges and refunds", "expected_version": 1}))["integration"]
    assert updated["version"] == "2" and updated["description"] == "charges and refunds"
    assert updated["has_credentials"] is True, "credentials not named stay"
    stale = rest.put(path, {"description": "x", "expected_version": 1})
    assert stale.status == 409 and "re-read" in stale.body["message"]

    disabled = ok(rest.put(path, {"enabled": False}))["integration"]
    assert disabled["enabled"] is False
    refused = invoke(rest, created["integration_id"], "request", {"path": "/v1/items/1"})
    assert refused.status == 400 and refused.body["code"] == 9 and "disabled" in refused.body["message"]

    cleared = ok(rest.put(path, {"update_mask": "credentials,labels,config",
                                 "config": {"base_url": api.url}}))["integration"]
    assert cleared["has_credentials"] is False and cleared["credential_keys"] == [] and not cleared.get("labels")

    assert ok(rest.delete(path))["integration_id"] == created["integration_id"]
    assert rest.get(path).status == 404
    assert rest.delete(path).status == 404
    assert "integration_id" in rest.get("/v1/integrations/not-a-uuid").field_violations()


def test_create_and_update_name_every_bad_field(rest: RestClient, api: FaultServer) -> None:
    assert set(violations(rest.post("/v1/integrations", {}))) == {"name", "kind"}
    bad = violations(rest.post("/v1/integrations", {
        "name": " bad\nname", "kind": "INTEGRATION_KIND_HTTP", "labels": {"Bad Key": "v"},
        # pragma: allowlist nextline secret - fake credential, test input
        "config": {"base_url": "ftp://x", "auth": "bearer", "password": "oops", "headers": {"Authorization": "x"},
                   "resilience": {"max_attempts": 99}, "cache": {"ttl_seconds": -1}, "rate_limit": "fast"},
        "credentials": {"nope": "x"},
    }))
    assert set(bad) >= {"name", 'labels["Bad Key"]', "config.base_url", "config.password",
                        "config.headers.Authorization", "config.resilience.max_attempts", "config.cache.ttl_seconds",
                        "config.rate_limit",
                        "credentials.nope", "credentials.token"}
    assert "secrets belong in credentials" in bad["config.password"]
    assert "oops" not in json.dumps(bad)
    assert set(violations(rest.post("/v1/integrations", {
        "name": "pg", "kind": "INTEGRATION_KIND_POSTGRES", "config": {"port": 0}}))) == {
        "config.host", "config.dbname", "config.user", "config.port"}
    assert "config.root" in violations(rest.post("/v1/integrations", {
        "name": "dir", "kind": "INTEGRATION_KIND_LOCAL_STORAGE", "config": {"root": "relative"}}))

    existing = create(rest, "unique-name", "HTTP", {"base_url": api.url})
    duplicate = rest.post("/v1/integrations", {"name": "UNIQUE-name", "kind": "INTEGRATION_KIND_HTTP",
                                               "config": {"base_url": api.url}})
    assert duplicate.status == 409 and duplicate.body["code"] == 6
    path = f"/v1/integrations/{existing['integration_id']}"
    assert "update_mask" in violations(rest.put(path, {}))
    assert "update_mask.paths[0]" in violations(rest.put(path, {"update_mask": "kind"}))
    assert "credentials.token" in violations(rest.put(path, {"config": {"base_url": api.url, "auth": "bearer"}}))
    assert rest.put(f"/v1/integrations/{uuid.uuid4()}", {"description": "x"}).status == 404
    other = create(rest, "other-name", "HTTP", {"base_url": api.url})
    assert rest.put(f"/v1/integrations/{other['integration_id']}", {"name": "unique-name"}).status == 409


def test_list_filters_and_pages(rest: RestClient, api: FaultServer, tmp_path: Path) -> None:
    for i in range(3):
        create(rest, f"list-dir-{i}", "LOCAL_STORAGE", {"root": str(tmp_path / str(i))},
               labels={"batch": "l" if i < 2 else "m"}, disabled=i == 2)
    page = ok(rest.get("/v1/integrations?kind=INTEGRATION_KIND_LOCAL_STORAGE&page_size=2&name_contains=list-dir"))
    assert len(page["integrations"]) == 2 and page["page_info"]["total_size"] == 3
    token = page["page_info"]["next_page_token"]
    rest_page = ok(rest.get("/v1/integrations?kind=INTEGRATION_KIND_LOCAL_STORAGE&page_size=2&name_contains=list-dir"
                            f"&page_token={token}"))
    names = [i["name"] for i in page["integrations"] + rest_page["integrations"]]
    assert names == ["list-dir-2", "list-dir-1", "list-dir-0"], "newest first, each once"
    assert len(ok(rest.get("/v1/integrations?enabled=false&name_contains=list-dir"))["integrations"]) == 1
    assert len(ok(rest.get("/v1/integrations?label=batch=l"))["integrations"]) == 2
    assert len(ok(rest.get("/v1/integrations?label=batch"))["integrations"]) == 3
    assert set(violations(rest.get("/v1/integrations?enabled=maybe&label=Bad%20Key&page_size=5000"))) <= {
        "enabled", "label", "page_size"}
    assert "page_token" in violations(rest.get(f"/v1/integrations?page_token={token}"))


# --- HTTP: probes, invoke, cache, limits, breaker -------------------------------------------------


def test_http_health_test_invoke_with_bearer_and_oauth2(rest: RestClient, api: FaultServer) -> None:
    bearer = create(rest, "items-bearer", "HTTP", http_config(api), {"token": SECRET_TOKEN})
    iid = bearer["integration_id"]
    health = ok(rest.get(f"/v1/integrations/{iid}/health"))
    assert health["probe"]["state"] == "HEALTH_STATE_SERVING" and health["circuit_state"] == "closed"
    tested = ok(rest.post(f"/v1/integrations/{iid}/test"))
    assert tested["ok"] is True and [s["name"] for s in tested["steps"]] == ["connect", "authenticate", "request"]
    assert ok(rest.get(f"/v1/integrations/{iid}"))["integration"]["last_probe"]["probe"] == "test"

    result = ok(invoke(rest, iid, "request", {"path": "/v1/items/42", "query": {"expand": "all"}}))
    assert result["result"]["status"] == 200 and result["result"]["body"]["id"] == "42"
    assert result["from_cache"] is False and result["attempts"] == 1
    charge = ok(invoke(rest, iid, "request", {"method": "POST", "path": "/v1/charges", "body": {"amount": 5}}))
    assert charge["result"]["body"] == {"charge": {"amount": 5}, "status": "succeeded"}

    oauth = create(rest, "items-oauth", "HTTP", {"base_url": api.url, "auth": "oauth2_client_credentials",
                                                 "token_url": "/oauth/token", "health_path": "/health",
                                                 "test_path": "/v1/items/probe"},
                   {"client_id": "svc", "client_secret": CLIENT_SECRET})
    tested = ok(rest.post(f"/v1/integrations/{oauth['integration_id']}/test"))
    assert tested["ok"] is True, tested
    assert ok(invoke(rest, oauth["integration_id"], "request", {"path": "/v1/items/7"}))["result"]["status"] == 200

    wrong = create(rest, "items-wrong-secret", "HTTP", {"base_url": api.url, "auth": "oauth2_client_credentials",
                                                        "token_url": "/oauth/token"},
                   {"client_id": "svc", "client_secret": "not-it"})
    refused = invoke(rest, wrong["integration_id"], "request", {"path": "/v1/items/7"})
    assert refused.status == 400 and refused.body["code"] == 9 and "refused the client credentials" in \
        refused.body["message"]
    failed_test = ok(rest.post(f"/v1/integrations/{wrong['integration_id']}/test"))
    assert failed_test["ok"] is False and failed_test["steps"][-1]["name"] == "authenticate"

    bad = violations(invoke(rest, iid, "fetch", {}))
    assert "operation" in bad and "request" in bad["operation"]
    bad = violations(invoke(rest, iid, "request", {"method": "TRACE", "path": "http://elsewhere/",
                                                   "headers": {"Authorization": "x"}, "extra": 1}))
    assert set(bad) == {"parameters.method", "parameters.path", "parameters.headers.Authorization",
                        "parameters.extra"}
    assert invoke(rest, str(uuid.uuid4()), "request", {}).status == 404
    # pragma: allowlist nextline secret - fake credential, test input
    assert "client_key" in violations(invoke(rest, iid, "request", {}, client_key="has space"))


def test_cache_counts_hits_and_misses_and_clear_empties_it(rest: RestClient, api: FaultServer) -> None:
    cached = create(rest, "items-cached", "HTTP", http_config(api, cache={"ttl_seconds": 60}),
                    {"token": SECRET_TOKEN})
    iid = cached["integration_id"]
    before = api.requests["/v1/items/c1"]
    first = ok(invoke(rest, iid, "request", {"path": "/v1/items/c1"}))
    second = ok(invoke(rest, iid, "request", {"path": "/v1/items/c1"}))
    assert (first["from_cache"], second["from_cache"]) == (False, True)
    assert second["result"] == first["result"] and second["attempts"] == 0
    assert api.requests["/v1/items/c1"] == before + 1, "the hit did not reach the endpoint"
    ok(invoke(rest, iid, "request", {"path": "/v1/items/c2"}))
    ok(invoke(rest, iid, "request", {"path": "/v1/items/c1"}, skip_cache=True))
    ok(invoke(rest, iid, "request", {"method": "POST", "path": "/v1/charges", "body": {}}))
    stats = ok(rest.get(f"/v1/integrations/{iid}/cache"))["cache"]
    assert stats["enabled"] is True and stats["ttl"] == "60s"
    assert (stats["hits"], stats["misses"], stats["entries"]) == ("1", "2", 2), stats
    assert int(stats["size_bytes"]) > 0 and stats["hit_ratio"] == pytest.approx(1 / 3)

    cleared = ok(rest.post(f"/v1/integrations/{iid}/cache/clear"))
    assert cleared["cleared_entries"] == 2 and cleared["cache"]["entries"] == 0
    assert ok(invoke(rest, iid, "request", {"path": "/v1/items/c1"}))["from_cache"] is False
    assert rest.get(f"/v1/integrations/{uuid.uuid4()}/cache").status == 404
    assert rest.post(f"/v1/integrations/{uuid.uuid4()}/cache/clear").status == 404

    tiny = create(rest, "items-tiny-cache", "HTTP", http_config(api, cache={"max_entries": 2}), {"token": SECRET_TOKEN})
    for key in ("a", "b", "c"):
        ok(invoke(rest, tiny["integration_id"], "request", {"path": f"/v1/items/{key}"}))
    tiny_stats = ok(rest.get(f"/v1/integrations/{tiny['integration_id']}/cache"))["cache"]
    assert (tiny_stats["entries"], tiny_stats["evictions"]) == (2, "1")


def test_rate_limits_per_integration_and_per_client(rest: RestClient, api: FaultServer) -> None:
    limited = create(rest, "items-limited", "HTTP", http_config(api, cache={"enabled": False}, rate_limit={
        "requests_per_second": 0.01, "burst": 3, "per_client_requests_per_second": 0.01, "per_client_burst": 2}),
        {"token": SECRET_TOKEN})
    iid = limited["integration_id"]
    # pragma: allowlist nextline secret - fake credential, test input
    statuses = [invoke(rest, iid, "request", {"path": "/v1/items/r"}, client_key="alice").status for _ in range(3)]
    assert statuses == [200, 200, 429], "alice's own bucket holds 2"
    third = rest.call("POST", f"/v1/integrations/{iid}/invoke", {"operation": "request",
                      "parameters": {"path": "/v1/items/r"}}, headers={"x-client-key": "bob"})
    assert third.status == 200, "bob has his own bucket; the header names him"
    over = invoke(rest, iid, "request", {"path": "/v1/items/r"}, client_key="carol")
    assert over.status == 429 and "integration" in over.body["message"] and "over its rate limit" in \
        over.body["message"]
    status = ok(rest.get(f"/v1/integrations/{iid}/rate-limit"))
    assert status["integration"]["admitted"] == "3" and status["integration"]["rejected"] == "1"
    assert status["integration"]["burst"] == 3 and status["integration"]["available"] < 1
    clients = {c["key"]: c for c in status["clients"]}
    assert (clients["alice"]["admitted"], clients["alice"]["rejected"]) == ("2", "1")
    assert clients["bob"]["admitted"] == "1" and clients["carol"]["admitted"] == "1"
    assert status["instance_id"] == "integration-1"
    assert rest.get(f"/v1/integrations/{uuid.uuid4()}/rate-limit").status == 404


def test_breaker_opens_on_a_failing_endpoint_serves_stale_and_resets(rest: RestClient) -> None:
    with fault_server(token=SECRET_TOKEN) as flaky:
        config = http_config(flaky, cache={"ttl_seconds": 0.2, "stale_seconds": 60}, resilience={
            "failure_threshold": 3, "recovery_timeout_seconds": 60, "max_attempts": 2, "initial_backoff_seconds": 0.01,
            "attempt_timeout_seconds": 0.5, "timeout_seconds": 2})
        iid = create(rest, "items-flaky", "HTTP", config, {"token": SECRET_TOKEN})["integration_id"]
        ok(invoke(rest, iid, "request", {"path": "/v1/items/s"}))
        time.sleep(0.3)
        flaky.set_mode("failing")
        codes = [invoke(rest, iid, "request", {"method": "POST", "path": "/v1/charges", "body": {}}).status
                 for _ in range(3)]
        assert codes == [503, 503, 503]
        breaker = ok(rest.get(f"/v1/integrations/{iid}/circuit-breaker"))
        assert breaker["state"] == "opened" and breaker["failure_threshold"] == 3 and "open_time" in breaker
        assert [t["state"] for t in breaker["transitions"]] == ["opened"]
        fast = invoke(rest, iid, "request", {"method": "POST", "path": "/v1/charges", "body": {}})
        assert fast.status == 503 and fast.body["details"][0]["reason"] == "ERROR_REASON_CIRCUIT_OPEN"
        stale = ok(invoke(rest, iid, "request", {"path": "/v1/items/s"}))
        assert stale["stale"] is True and stale["from_cache"] is True and stale["result"]["body"]["id"] == "s"
        calls = breaker["calls"]
        assert int(calls["failed"]) == 3 and calls["last_errors"][-1] == "UNAVAILABLE"

        status = ok(rest.get(f"/v1/integrations/{iid}/status"))
        assert status["circuit_state"] == "opened" and int(status["calls"]["short_circuited"]) == 2
        assert int(status["calls"]["fallbacks"]) == 1 and status["cache"]["stale_served"] == "1"
        health = ok(rest.get(f"/v1/integrations/{iid}/health"))
        assert health["probe"]["state"] == "HEALTH_STATE_NOT_SERVING" and health["circuit_state"] == "opened"

        flaky.set_mode("healthy")
        assert ok(rest.get(f"/v1/integrations/{iid}/health"))["probe"]["state"] == "HEALTH_STATE_SERVING", \
            "the probe sees the recovery the open breaker hides"
        reset = ok(rest.post(f"/v1/integrations/{iid}/circuit-breaker/reset"))
        assert (reset["previous_state"], reset["state"]) == ("opened", "closed")
        fresh = ok(invoke(rest, iid, "request", {"path": "/v1/items/s"}))
        assert fresh["stale"] is False and fresh["attempts"] == 1
        assert ok(rest.get(f"/v1/integrations/{iid}/circuit-breaker"))["state"] == "closed"
    assert rest.get(f"/v1/integrations/{uuid.uuid4()}/circuit-breaker").status == 404
    assert rest.post(f"/v1/integrations/{uuid.uuid4()}/circuit-breaker/reset").status == 404


def test_idempotent_reads_are_retried_writes_are_not(rest: RestClient) -> None:
    with fault_server() as flaky:
        iid = create(rest, "items-retry", "HTTP", {"base_url": flaky.url, "cache": {"enabled": False}, "resilience": {
            "max_attempts": 3, "initial_backoff_seconds": 0.01, "failure_threshold": 50}})["integration_id"]
        flaky.set_mode("failing")
        read = invoke(rest, iid, "request", {"path": "/v1/items/x"})
        write = invoke(rest, iid, "request", {"method": "POST", "path": "/v1/charges", "body": {}})
        assert read.status == 503 and write.status == 503
        # 3 attempts; aiohttp itself may resend a GET once when the server drops a reused connection.
        assert flaky.requests["/v1/items/x"] >= 3 and flaky.requests["/v1/charges"] == 1
        counters = ok(rest.get(f"/v1/integrations/{iid}/status"))["calls"]
        assert counters["retries"] == "2" and counters["failed"] == "2"


# --- the other kinds ----------------------------------------------------------------------------


def pg_config(db: ExternalDb, user: str, **extra: Any) -> dict[str, Any]:
    return {"host": db.host, "port": db.port, "dbname": db.dbname, "user": user, **extra}


def test_postgres_read_only_queries(rest: RestClient, external_db: ExternalDb) -> None:
    iid = create(rest, "ext-db", "POSTGRES", pg_config(external_db, external_db.reader, max_rows=5),
                 {"password": PG_PASSWORD})["integration_id"]
    assert ok(rest.get(f"/v1/integrations/{iid}/health"))["probe"]["state"] == "HEALTH_STATE_SERVING"
    tested = ok(rest.post(f"/v1/integrations/{iid}/test"))
    assert tested["ok"] is True and "PostgreSQL" in tested["steps"][0]["detail"]
    result = ok(invoke(rest, iid, "query", {"sql": "SELECT n, n * 2 AS twice FROM generate_series(1, %s) n",
                                            "args": [10]}))["result"]
    assert result["columns"] == ["n", "twice"] and result["row_count"] == 5 and result["truncated"] is True
    assert result["rows"][1] == [2, 4]
    assert ok(invoke(rest, iid, "query", {"sql": "SELECT n, n * 2 AS twice FROM generate_series(1, %s) n",
                                          "args": [10]}))["from_cache"] is True
    named = ok(invoke(rest, iid, "query", {"sql": "SELECT name FROM items WHERE n = %s", "args": [3]}))
    assert named["result"]["rows"] == [["item 3"]]
    assert "parameters.sql" in violations(invoke(rest, iid, "query", {"sql": "DELETE FROM items"}))
    refused = violations(invoke(rest, iid, "query", {"sql": "WITH x AS (DELETE FROM items RETURNING 1) "
                                                            "SELECT * FROM x"}))
    assert "read-only" in refused["parameters.sql"]
    assert "does not exist" in violations(invoke(rest, iid, "query", {"sql": "SELECT * FROM nowhere"}))[
        "parameters.sql"]
    quick = create(rest, "ext-db-quick", "POSTGRES", pg_config(external_db, external_db.reader, resilience={
        "attempt_timeout_seconds": 1, "max_attempts": 1}), {"password": PG_PASSWORD})["integration_id"]
    started = time.monotonic()
    slow = invoke(rest, quick, "query", {"sql": "SELECT pg_sleep(10)"})
    assert slow.status == 504 and time.monotonic() - started < 5, "the statement timeout ends a slow query"
    down = create(rest, "db-down", "POSTGRES", {"host": "127.0.0.1", "port": 1, "dbname": "x", "user": "x",
                                                "resilience": {"max_attempts": 1}})
    assert invoke(rest, down["integration_id"], "query", {"sql": "SELECT 1"}).status == 503


@pytest.mark.parametrize(("sql", "fragment"), [
    ("SELECT pg_read_file('/etc/hostname')", "pg_read_file"),
    ("SELECT pg_read_binary_file('/etc/hostname')", "pg_read_binary_file"),
    ("SELECT * FROM pg_ls_dir('.')", "pg_ls_dir"),
    ("SELECT * FROM pg_stat_file('postgresql.conf')", "pg_stat_file"),
    ("SELECT lo_import('/etc/hostname')", "lo_import"),
    ("SELECT lo_get(1)", "lo_get"),
    ("SELECT * FROM dblink('dbname=postgres', 'select 1') AS t(x int)", "dblink"),
    ("COPY items TO STDOUT", "read-only statement"),
    ("SELECT 1 AS a; COPY items TO '/tmp/x'", "one statement"),
    ("SET ROLE postgres", "read-only statement"),
    ("SET SESSION AUTHORIZATION postgres", "read-only statement"),
    ("SELECT set_config('statement_timeout', '0', false)", "set_config"),
    ("SELECT query_to_xml('select pg_read_file(''/etc/hostname'')', true, true, '')", "query_to_xml"),
    ('SELECT pg_catalog."pg_ls_dir"(\'.\')', "pg_ls_dir"),
])
def test_postgres_refuses_file_object_remote_and_role_changing_sql(
        rest: RestClient, external_db: ExternalDb, sql: str, fragment: str) -> None:
    name = f"ext-db-screen-{uuid.uuid4().hex[:6]}"
    iid = create(rest, name, "POSTGRES", pg_config(external_db, external_db.reader),
                 {"password": PG_PASSWORD})["integration_id"]
    refused = invoke(rest, iid, "query", {"sql": sql})
    assert refused.status == 400, refused.body
    assert fragment in violations(refused)["parameters.sql"]


def test_postgres_refuses_a_superuser_or_a_role_with_server_file_access(
        rest: RestClient, external_db: ExternalDb) -> None:
    root = create(rest, "ext-db-superuser", "POSTGRES", pg_config(external_db, "postgres"),
                  {"password": external_db.superuser_password})["integration_id"]
    refused = invoke(rest, root, "query", {"sql": "SELECT current_user"})
    assert refused.status == 400, refused.body
    assert "a superuser" in violations(refused)["config.user"] and "CREATE ROLE" in violations(refused)["config.user"]
    probe = ok(rest.get(f"/v1/integrations/{root}/health"))["probe"]
    assert probe["state"] == "HEALTH_STATE_NOT_SERVING" and "superuser" in probe["detail"]
    filer = create(rest, "ext-db-filer", "POSTGRES", pg_config(external_db, external_db.filer),
                   {"password": PG_PASSWORD})["integration_id"]
    refused = invoke(rest, filer, "query", {"sql": "SELECT 1"})
    assert refused.status == 400 and "pg_read_server_files" in violations(refused)["config.user"]


def test_the_mesh_own_postgresql_and_nats_are_refused(rest: RestClient, mesh: Mesh) -> None:
    """The probe of issue 10: an integration at the mesh's own PostgreSQL, as its own user. Loopback is
    admitted here (INTEGRATION_ALLOWED_TARGETS=127.0.0.1), the mesh's own servers on it are not."""
    url = urlparse(mesh.database_url)
    refused = rest.post("/v1/integrations", {
        "name": "mesh-db", "kind": "INTEGRATION_KIND_POSTGRES", "credentials": {"password": url.password or "x"},
        "config": {"host": url.hostname, "port": url.port, "dbname": url.path[1:], "user": url.username}})
    assert refused.status == 400
    why = violations(refused)["config.host"]
    assert OWN_INFRASTRUCTURE in why and "PostgreSQL (DATABASE_URL)" in why and "INTEGRATION_ALLOWED_TARGETS" in why
    assert (url.password or "x") not in json.dumps(refused.body)
    nats = urlparse(mesh.nats_url)
    refused = rest.post("/v1/integrations", {
        "name": "mesh-nats", "kind": "INTEGRATION_KIND_NATS",
        "config": {"servers": ["nats://127.0.0.1:1", f"nats://{nats.hostname}:{nats.port}"]}})
    assert refused.status == 400 and "NATS (NATS_URL)" in violations(refused)["config.servers[1]"]
    adhoc = rest.post("/v1/clients/postgres/test", {"config": {"host": "127.0.0.2", "port": url.port,
                                                                "dbname": "x", "user": "x"}})
    assert adhoc.status == 400 and OWN_INFRASTRUCTURE in violations(adhoc)["config.host"], \
        "its port on any loopback address"


def test_smtp_sends_with_login(rest: RestClient, smtp: SmtpSink) -> None:
    config = {"host": "127.0.0.1", "port": smtp.port, "from_address": "noreply@example.com"}
    iid = create(rest, "mailer", "SMTP", config, {"username": "mailer", "password": SMTP_PASSWORD})["integration_id"]
    assert ok(rest.get(f"/v1/integrations/{iid}/health"))["probe"]["state"] == "HEALTH_STATE_SERVING"
    assert ok(rest.post(f"/v1/integrations/{iid}/test"))["ok"] is True
    sent = ok(invoke(rest, iid, "send", {"to": ["ada@example.com"], "subject": "Hello", "text": "Hi Ada"}))["result"]
    assert sent["accepted"] == ["ada@example.com"] and sent["message_id"]
    assert smtp.messages[-1].rcpt_tos == ["ada@example.com"] and b"Hi Ada" in smtp.messages[-1].content
    assert "login:ok" in [x.lower() for x in smtp.logins] or "plain:ok" in [x.lower() for x in smtp.logins]
    assert set(violations(invoke(rest, iid, "send", {"to": ["not-an-address"], "subject": "a\nb"}))) == {
        "parameters.to[0]", "parameters.subject", "parameters.text"}
    wrong = create(rest, "mailer-wrong", "SMTP", {"host": "127.0.0.1", "port": smtp.port},
                   # pragma: allowlist nextline secret - fake credential, test input
                   {"username": "mailer", "password": "wrong-password"})
    refused = invoke(rest, wrong["integration_id"], "send", {"from": "a@example.com", "to": "b@example.com",
                                                             "subject": "x", "text": "y"})
    assert refused.status == 400 and "refused the login" in refused.body["message"]


def test_local_storage_objects(rest: RestClient, tmp_path: Path) -> None:
    root = tmp_path / "objects"
    iid = create(rest, "local-objects", "LOCAL_STORAGE", {"root": str(root)})["integration_id"]
    assert ok(rest.post(f"/v1/integrations/{iid}/test"))["ok"] is True
    assert ok(invoke(rest, iid, "put", {"key": "docs/a.txt", "content": "alpha"}))["result"]["size"] == 5
    binary = base64.b64encode(b"\x00\xff").decode()
    ok(invoke(rest, iid, "put", {"key": "docs/b.bin", "content_base64": binary}))
    assert (root / "docs" / "a.txt").read_text() == "alpha"
    assert ok(invoke(rest, iid, "get", {"key": "docs/a.txt"}))["result"]["content"] == "alpha"
    assert ok(invoke(rest, iid, "get", {"key": "docs/b.bin"}))["result"]["content_base64"] == binary
    listed = ok(invoke(rest, iid, "list", {"prefix": "docs/"}))["result"]
    assert [o["key"] for o in listed["objects"]] == ["docs/a.txt", "docs/b.bin"]
    assert ok(invoke(rest, iid, "delete", {"key": "docs/a.txt"}))["result"]["deleted"] is True
    assert invoke(rest, iid, "get", {"key": "docs/a.txt"}).status == 404, "the write emptied the cache"
    assert "parameters.key" in violations(invoke(rest, iid, "get", {"key": "../etc/passwd"}))
    assert "parameters.content" in violations(invoke(rest, iid, "put", {"key": "x"}))


def test_s3_objects_through_sigv4(rest: RestClient) -> None:
    with s3_server(BUCKET) as endpoint:
        iid = create(rest, "s3-objects", "S3", {"endpoint": endpoint, "bucket": BUCKET},
                     {"access_key_id": "AKIDTEST", "secret_access_key": S3_SECRET})["integration_id"]
        assert ok(rest.get(f"/v1/integrations/{iid}/health"))["probe"]["state"] == "HEALTH_STATE_SERVING"
        assert ok(rest.post(f"/v1/integrations/{iid}/test"))["ok"] is True
        ok(invoke(rest, iid, "put", {"key": "reports/q 1.txt", "content": "quarter", "content_type": "text/plain"}))
        got = ok(invoke(rest, iid, "get", {"key": "reports/q 1.txt"}))["result"]
        assert got["content"] == "quarter" and got["size"] == 7
        assert ok(invoke(rest, iid, "head", {"key": "reports/q 1.txt"}))["result"]["size"] == 7
        listed = ok(invoke(rest, iid, "list", {"prefix": "reports/"}))["result"]
        assert [o["key"] for o in listed["objects"]] == ["reports/q 1.txt"]
        ok(invoke(rest, iid, "delete", {"key": "reports/q 1.txt"}))
        assert invoke(rest, iid, "get", {"key": "reports/q 1.txt"}).status == 404
        missing = create(rest, "s3-no-bucket", "S3", {"endpoint": endpoint, "bucket": "no-such-bucket"},
                         {"access_key_id": "AKIDTEST", "secret_access_key": S3_SECRET})
        probe = ok(rest.get(f"/v1/integrations/{missing['integration_id']}/health"))["probe"]
        assert probe["state"] == "HEALTH_STATE_NOT_SERVING" and "does not exist" in probe["detail"]


def test_nats_publish_and_request(rest: RestClient, external_nats: NatsProcess) -> None:
    server = f"nats://{external_nats.host}:{external_nats.port}"
    iid = create(rest, "ext-nats", "NATS", {"servers": [server], "subject_prefix": "apps"},
                 {"username": "app", "password": NATS_PASSWORD})["integration_id"]
    assert ok(rest.get(f"/v1/integrations/{iid}/health"))["probe"]["state"] == "HEALTH_STATE_SERVING"
    tested = ok(rest.post(f"/v1/integrations/{iid}/test"))
    assert tested["ok"] is True and tested["steps"][1]["name"] == "request/reply"
    assert ok(invoke(rest, iid, "publish", {"subject": "apps.events", "json": {"a": 1}}))["result"]["bytes"] == 7
    nobody = violations(invoke(rest, iid, "request", {"subject": "apps.nobody", "data": "x"}))
    assert "nobody answers" in nobody["parameters.subject"]
    assert "parameters.subject" in violations(invoke(rest, iid, "publish", {"subject": "other.x", "data": "x"}))
    assert "config.servers[0]" in violations(rest.post("/v1/integrations", {
        "name": "nats-bad", "kind": "INTEGRATION_KIND_NATS", "config": {"servers": ["nats://u:p@h:1"]}}))
    wrong = create(rest, "ext-nats-wrong", "NATS", {"servers": [server]}, {"username": "app", "password": "nope"})
    refused = invoke(rest, wrong["integration_id"], "publish", {"subject": "x", "data": "y"})
    assert refused.status == 400 and "refused the credentials" in refused.body["message"]
    ok(rest.delete(f"/v1/integrations/{wrong['integration_id']}"))  # the clients' health below expects NATS healthy


# --- clients, info, health ----------------------------------------------------------------------


def test_clients_list_health_and_test(rest: RestClient, api: FaultServer) -> None:
    clients = {c["client_type"]: c for c in ok(rest.get("/v1/clients"))["clients"]}
    assert set(clients) == {"http", "postgres", "smtp", "local_storage", "s3", "nats"}
    assert clients["http"]["integration_count"] >= 1 and "request" in clients["http"]["cacheable_operations"]
    assert clients["s3"]["credential_fields"] == ["access_key_id", "secret_access_key", "session_token"]

    everything = ok(rest.get("/v1/clients/health"))
    by_type = {c["client_type"]: c for c in everything["clients"]}
    assert by_type["http"]["integrations"] and by_type["nats"]["state"] == "HEALTH_STATE_SERVING"
    storage = ok(rest.get("/v1/clients/local_storage/health"))["health"]
    assert storage["client_type"] == "local_storage" and storage["state"] == "HEALTH_STATE_SERVING"
    assert rest.get("/v1/clients/ftp/health").status == 404

    adhoc = ok(rest.post("/v1/clients/http/test", {"config": http_config(api), "credentials": {"token": SECRET_TOKEN}}))
    assert adhoc["ok"] is True and adhoc["results"][0]["integration_id"] == ""
    wrong = ok(rest.post("/v1/clients/http/test", {"config": http_config(api), "credentials": {"token": "nope"}}))
    assert wrong["ok"] is False and "401" in wrong["results"][0]["steps"][-1]["detail"]
    registered = ok(rest.post("/v1/clients/local_storage/test"))
    assert registered["results"] and all(r["integration_id"] for r in registered["results"])
    assert "config.base_url" in violations(rest.post("/v1/clients/http/test", {"config": {"auth": "none"}}))
    assert "config" in violations(rest.post("/v1/clients/http/test", {"credentials": {"token": "x"}}))
    assert rest.post("/v1/clients/ftp/test").status == 404


def test_info_and_health(rest: RestClient, mesh: Mesh) -> None:
    info = ok(rest.get("/v1/integrations/info"))
    assert info["info"]["name"] == "integration" and int(info["integration_count"]) >= 1
    assert info["encryption_key_source"] == "generated file" and len(info["encryption_key_id"]) == 16
    key_file = mesh.state_dir / "integration" / "encryption.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert ok(rest.get("/v1/integrations/health"))["health"]["state"] == "HEALTH_STATE_SERVING"
    assert ok(rest.get("/v1/integrations/health/ready"))["health"]["service"] == "integration"
    assert ok(rest.get("/v1/integrations/health/live"))["state"] == "HEALTH_STATE_SERVING"


# --- the secrets never show -----------------------------------------------------------------------


def test_no_secret_in_any_response_log_or_column(rest: RestClient, mesh: Mesh) -> None:
    """Runs last: everything above used these credentials."""
    assert len(RecordingClient.bodies) > 50
    responses = "\n".join(RecordingClient.bodies)
    key = (mesh.state_dir / "integration" / "encryption.key").read_text().strip()

    def logs() -> str:
        return "\n".join(p.read_bytes().decode(errors="replace") for p in mesh.log_dir.rglob("*") if p.is_file())

    # Give the replica a moment to flush its last log lines.
    eventually(lambda: "circuit breaker reset" in logs(), timeout=5, what="the replica's log lines")
    log_text = logs()
    with psycopg.connect(mesh.database_url) as conn:
        rows = [r[0] for r in conn.execute("SELECT t::text FROM integration.integrations t").fetchall()]
        sealed = conn.execute("SELECT count(*) FROM integration.integrations WHERE credentials_ciphertext IS NOT NULL"
                              " AND length(credentials_nonce) = 12 AND credentials_key_id IS NOT NULL").fetchone()
    table = "\n".join(rows)
    assert sealed and sealed[0] >= 8, "the credentials are there, sealed"
    for secret in SECRETS:
        for form in (secret, secret.encode().hex(), base64.b64encode(secret.encode()).decode()):
            assert form not in responses, f"a response holds {secret[:4]}..."
            assert form not in log_text, f"a log holds {secret[:4]}..."
            assert form not in table, f"the table holds {secret[:4]}... in clear"
    assert key not in log_text and key not in responses
