"""Where integrations may connect, over REST through Envoy: loopback, link-local, the metadata address and
private networks are refused unless INTEGRATION_ALLOWED_TARGETS admits them, the mesh's own PostgreSQL and
NATS always; redirects are checked like the configured URL; stored credentials stay bound to their target.

The mesh admits exactly: the fake API's and the redirector's ports on 127.0.0.1, and 127.0.0.2 (any port,
where nothing listens: the credential-binding tests never connect). Refused non-loopback addresses are
refused before any connection is attempted: creation and the ad-hoc test answer 400 without a probe.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

from chassis.tooling.infra.ports import free_port
from chassis.tooling.mesh_testing import Reply, RestClient, running_mesh
from chassis.tooling.supervisor import Mesh
from tests.support.errors import violations
from tests.support.fault_server import FaultServer, fault_server
from tests.support.integration_servers import Redirector, redirect_server

TOKEN = f"tok-{uuid.uuid4().hex}"
ADMIT = "INTEGRATION_ALLOWED_TARGETS"


@pytest.fixture(scope="module")
def api() -> Iterator[FaultServer]:
    with fault_server(token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def redirector() -> Iterator[Redirector]:
    with redirect_server("http://127.0.0.1:1/") as server:
        yield server


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, api: FaultServer, redirector: Redirector) -> Iterator[Mesh]:
    admitted = f"127.0.0.1:{api.port}, 127.0.0.1:{redirector.port}, 127.0.0.2"
    with running_mesh(tmp_path_factory.mktemp("mesh"), only=["integration"], replicas=1,
                      extra_env={ADMIT: admitted}) as started:
        yield started


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> RestClient:
    return RestClient.for_mesh(mesh, timeout=30)


def create(rest: RestClient, kind: str, config: dict[str, Any], credentials: dict[str, str] | None = None) -> Reply:
    body: dict[str, Any] = {"name": f"{kind.lower()}-{uuid.uuid4().hex[:8]}", "kind": f"INTEGRATION_KIND_{kind}",
                            "config": config}
    if credentials:
        body["credentials"] = credentials
    return rest.post("/v1/integrations", body)


def created(rest: RestClient, kind: str, config: dict[str, Any], credentials: dict[str, str] | None = None) -> str:
    reply = create(rest, kind, config, credentials)
    assert reply.status == 200, reply.body
    return str(reply.body["integration"]["integration_id"])


def refused_field(reply: Reply, field: str) -> str:
    assert reply.status == 400, reply.body
    found = violations(reply)
    assert field in found, found
    return found[field]


def test_loopback_not_admitted_is_refused_naming_the_field(rest: RestClient) -> None:
    for url in (f"http://127.0.0.1:{free_port()}/", "http://127.0.0.3:8080/", "http://[::1]:8080/",
                f"http://localhost:{free_port()}/", "http://0.0.0.0:80/"):
        why = refused_field(create(rest, "HTTP", {"base_url": url}), "config.base_url")
        assert ("loopback" in why or "unspecified" in why) and ADMIT in why, why
    why = refused_field(create(rest, "SMTP", {"host": "127.0.0.1", "port": 25}), "config.host")
    assert "127.0.0.1:25" in why, "the message shows the entry that would admit it"


@pytest.mark.parametrize(("kind", "config", "field", "kind_of_address"), [
    ("HTTP", {"base_url": "http://169.254.169.254/latest/meta-data/"}, "config.base_url", "cloud metadata"),
    ("HTTP", {"base_url": "https://10.1.2.3/", "auth": "oauth2_client_credentials",
              "token_url": "https://10.1.2.4/token"}, "config.token_url", "private"),
    ("POSTGRES", {"host": "10.0.0.5", "dbname": "d", "user": "u"}, "config.host", "private"),
    ("SMTP", {"host": "169.254.10.10"}, "config.host", "link-local"),
    ("S3", {"endpoint": "http://192.168.1.10:9000", "bucket": "b-1"}, "config.endpoint", "private"),
    ("NATS", {"servers": ["nats://[fe80::1]:4222"]}, "config.servers[0]", "link-local"),
])
def test_metadata_link_local_and_private_are_refused_before_any_connection(
        rest: RestClient, kind: str, config: dict[str, Any], field: str, kind_of_address: str) -> None:
    credentials = {"S3": {"access_key_id": "AKID", "secret_access_key": "s3-secret"},
                   "HTTP": {"client_id": "c", "client_secret": "cs"} if "token_url" in config else {}}.get(kind)
    assert kind_of_address in refused_field(create(rest, kind, config, credentials), field)
    # The ad-hoc test refuses too, with no step run: it never got as far as connecting.
    adhoc = rest.post(f"/v1/clients/{kind.lower()}/test", {"config": config, "credentials": credentials or {}})
    assert kind_of_address in refused_field(adhoc, field) and "results" not in adhoc.body


def test_the_mesh_own_servers_are_refused_even_on_an_admitted_address(rest: RestClient, mesh: Mesh) -> None:
    pg, nats = urlparse(mesh.database_url), urlparse(mesh.nats_url)
    for host in ("127.0.0.1", "127.0.0.2"):  # 127.0.0.2 is admitted with any port, but not the mesh's own
        why = refused_field(create(rest, "POSTGRES", {"host": host, "port": pg.port, "dbname": "postgres",
                                                      "user": "postgres"}, {"password": "x"}), "config.host")
        assert "the mesh's own PostgreSQL (DATABASE_URL)" in why and "whatever INTEGRATION_ALLOWED_TARGETS" in why
    why = refused_field(create(rest, "NATS", {"servers": [f"nats://127.0.0.2:{nats.port}"]}), "config.servers[0]")
    assert "the mesh's own NATS (NATS_URL)" in why
    why = refused_field(create(rest, "HTTP", {"base_url": f"http://127.0.0.2:{pg.port}/"}), "config.base_url")
    assert "the mesh's own PostgreSQL" in why, "whatever the kind"


def test_an_admitted_api_answers_and_a_redirect_is_checked_like_base_url(
        rest: RestClient, api: FaultServer, redirector: Redirector, mesh: Mesh) -> None:
    iid = created(rest, "HTTP", {"base_url": api.url, "auth": "bearer", "cache": {"enabled": False}},
                  {"token": TOKEN})
    answer = rest.post(f"/v1/integrations/{iid}/invoke",
                       {"operation": "request", "parameters": {"path": "/v1/items/1"}})
    assert answer.status == 200 and answer.body["result"]["status"] == 200

    hop = created(rest, "HTTP", {"base_url": redirector.url, "auth": "bearer", "cache": {"enabled": False},
                                 "resilience": {"max_attempts": 1}}, {"token": TOKEN})
    call = {"operation": "request", "parameters": {"path": "/start"}}
    redirector.location = f"http://127.0.0.2:{urlparse(mesh.database_url).port}/"
    why = refused_field(rest.post(f"/v1/integrations/{hop}/invoke", call), "config.base_url")
    assert "/start redirected to" in why and "the mesh's own PostgreSQL" in why
    redirector.location = "http://169.254.169.254/latest/meta-data/"
    assert "cloud metadata" in refused_field(rest.post(f"/v1/integrations/{hop}/invoke", call), "config.base_url")
    redirector.location = f"http://127.0.0.1:{free_port()}/"
    assert "loopback" in refused_field(rest.post(f"/v1/integrations/{hop}/invoke", call), "config.base_url")

    # To an admitted origin it is followed, without the credentials (they are for the redirector's origin).
    redirector.location = f"{api.url}/v1/items/2"
    followed = rest.post(f"/v1/integrations/{hop}/invoke", call)
    assert followed.status == 200 and followed.body["result"]["status"] == 401, followed.body
    assert redirector.authorizations[-1] == f"Bearer {TOKEN}"
    # A redirect to itself, forever: bounded.
    redirector.location = f"{redirector.url}/again"
    looping = rest.post(f"/v1/integrations/{hop}/invoke", call)
    assert looping.status == 400 and "more than 5 redirects" in looping.body["message"]


REBIND = "changing the target needs the credentials again"
HOST = "127.0.0.2"  # admitted, nothing listens: these integrations are never called


@pytest.mark.parametrize(("kind", "config", "credentials", "change", "field"), [
    ("HTTP", {"base_url": f"http://{HOST}:8001/v1", "auth": "bearer"}, {"token": "t-1234"},
     {"base_url": f"http://{HOST}:8002/v1"}, "config.base_url"),
    ("HTTP", {"base_url": f"http://{HOST}:8001/v1", "auth": "bearer"}, {"token": "t-1234"},
     {"base_url": f"https://{HOST}:8001/v1"}, "config.base_url"),
    ("HTTP", {"base_url": f"http://{HOST}:8001", "auth": "oauth2_client_credentials", "token_url": "/token"},
     {"client_id": "c", "client_secret": "s-1234"},
     {"token_url": f"http://{HOST}:8003/token"}, "config.token_url"),
    # pragma: allowlist nextline secret - fake credential, test input
    ("POSTGRES", {"host": HOST, "port": 5999, "dbname": "app", "user": "reader"}, {"password": "pw-1234"},
     {"dbname": "other"}, "config.dbname"),
    # pragma: allowlist nextline secret - fake credential, test input
    ("POSTGRES", {"host": HOST, "port": 5999, "dbname": "app", "user": "reader"}, {"password": "pw-1234"},
     {"port": 5998}, "config.port"),
    # pragma: allowlist nextline secret - fake credential, test input
    ("POSTGRES", {"host": HOST, "port": 5999, "dbname": "app", "user": "reader"}, {"password": "pw-1234"},
     {"user": "postgres"}, "config.user"),
    # pragma: allowlist nextline secret - fake credential, test input
    ("SMTP", {"host": HOST, "port": 2525}, {"username": "u", "password": "pw-1234"}, {"port": 2526}, "config.port"),
    ("S3", {"endpoint": f"http://{HOST}:9000", "bucket": "bucket-a"},
     {"access_key_id": "AKID", "secret_access_key": "sk-1234"}, {"bucket": "bucket-b"}, "config.bucket"),
    ("S3", {"endpoint": f"http://{HOST}:9000", "bucket": "bucket-a"},
     {"access_key_id": "AKID", "secret_access_key": "sk-1234"}, {"endpoint": f"http://{HOST}:9001"},
     "config.endpoint"),
    ("NATS", {"servers": [f"nats://{HOST}:4999"]}, {"token": "nt-1234"},
     {"servers": [f"nats://{HOST}:4999", f"nats://{HOST}:4998"]}, "config.servers"),
])
def test_changing_the_target_needs_the_credentials_again(
        rest: RestClient, kind: str, config: dict[str, Any], credentials: dict[str, str], change: dict[str, Any],
        field: str) -> None:
    iid = created(rest, kind, config, credentials)
    path = f"/v1/integrations/{iid}"
    moved = {**config, **change}
    why = refused_field(rest.put(path, {"update_mask": "config", "config": moved}), field)
    assert REBIND in why and "send credentials with this update" in why
    assert rest.get(path).body["integration"]["config"] == config, "nothing changed"
    # Something else in config: the credentials stay.
    same_target = rest.put(path, {"update_mask": "config", "config": {**config, "cache": {"enabled": False}}})
    assert same_target.status == 200 and same_target.body["integration"]["has_credentials"] is True
    # The credentials again, with the new target: accepted.
    again = rest.put(path, {"update_mask": "config,credentials", "config": moved, "credentials": credentials})
    assert again.status == 200, again.body


def test_a_new_path_on_the_same_origin_keeps_the_credentials(rest: RestClient) -> None:
    iid = created(rest, "HTTP", {"base_url": f"http://{HOST}:8001/v1", "auth": "bearer"}, {"token": "t-1234"})
    moved = rest.put(f"/v1/integrations/{iid}", {"update_mask": "config",
                                                 "config": {"base_url": f"http://{HOST}:8001/v2", "auth": "bearer"}})
    assert moved.status == 200 and moved.body["integration"]["has_credentials"] is True


def test_an_update_to_a_refused_target_is_refused(rest: RestClient) -> None:
    iid = created(rest, "HTTP", {"base_url": f"http://{HOST}:8001/"})
    why = refused_field(rest.put(f"/v1/integrations/{iid}", {"update_mask": "config",
                                                             "config": {"base_url": "http://169.254.169.254/"}}),
                        "config.base_url")
    assert "cloud metadata" in why


def test_local_storage_may_not_serve_the_mesh_state_folder(rest: RestClient, mesh: Mesh) -> None:
    for root in (str(mesh.state_dir), str(mesh.state_dir / "integration"), "/", "/proc/self"):
        assert "use a folder of its own" in refused_field(create(rest, "LOCAL_STORAGE", {"root": root}),
                                                          "config.root")
