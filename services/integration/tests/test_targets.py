"""Where integrations may connect (services.integration.targets) and the SQL screen, decided before any packet.

Nothing here connects anywhere but loopback: refused targets are refused by the pure check, and the
clients are given sessions and connectors that fail the test if they are ever reached.
"""

from __future__ import annotations

import ipaddress
from typing import Any, cast

import aiohttp
import pytest

from chassis.config import ConfigError, Settings
from services.integration.clients import sql_screen
from services.integration.clients.base import Shared
from services.integration.clients.http import HttpClient
from services.integration.clients.postgres import PostgresClient
from services.integration.clients.session import guarded_session
from services.integration.clients.storage import refused_root
from services.integration.targets import TargetGuard, TargetRefused, infrastructure, kind_of, parse_allowed

MESH = Settings(service="integration", database_url="postgresql://u:p@127.0.0.1:5432/db",
                nats_url="nats://u:p@127.0.0.1:4222", consul_http_addr="consul.internal:8500")


def resolver(answers: dict[str, list[str]], asked: list[str] | None = None) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        if asked is not None:
            asked.append(host)
        if host in answers:
            return answers[host]
        ipaddress.ip_address(host.strip("[]"))  # an address resolves to itself; other names fail the test
        return [host.strip("[]")]
    return resolve


def guard(allowed: str = "", answers: dict[str, list[str]] | None = None, asked: list[str] | None = None
          ) -> TargetGuard:
    return TargetGuard(parse_allowed(allowed), infrastructure(MESH),
                       resolver({"consul.internal": ["10.1.2.3"], **(answers or {})}, asked))


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 an address the guard must refuse, not one bound to
    ("::", "unspecified"), ("169.254.169.254", "cloud metadata"), ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"), ("224.0.0.1", "multicast"), ("ff02::1", "multicast"), ("10.0.0.1", "private"),
    ("192.168.1.1", "private"), ("172.16.0.1", "private"), ("fd00::1", "private"),
    ("100.64.0.1", "shared (carrier-grade NAT)"), ("::ffff:127.0.0.1", "loopback"), ("240.0.0.1", "reserved"),
    ("93.184.216.34", None), ("2606:4700::1111", None),
])
def test_every_non_public_address_has_a_kind(address: str, kind: str | None) -> None:
    assert kind_of(ipaddress.ip_address(address)) == kind


def test_allow_list_entries_parse_and_bad_ones_name_the_variable() -> None:
    entries = parse_allowed(" 127.0.0.1:8080, 10.0.0.0/8 ,[::1]:5432, mail.internal:25, fd00::/8, host.local ,")
    assert [(str(e.network) if e.network else e.host, e.port) for e in entries] == [
        ("127.0.0.1/32", 8080), ("10.0.0.0/8", None), ("::1/128", 5432), ("mail.internal", 25),
        ("fd00::/8", None), ("host.local", None)]
    for bad in ("127.0.0.1:99999", "10.0.0.0/99", "a b", "[::1", "h:x"):
        with pytest.raises(ConfigError, match="INTEGRATION_ALLOWED_TARGETS"):
            parse_allowed(bad)


async def test_loopback_metadata_and_private_are_refused_by_default_before_any_connection() -> None:
    g = guard()
    for host in ("127.0.0.1", "169.254.169.254", "10.20.30.40", "[::1]", "0.0.0.0"):  # noqa: S104 refused, not bound
        with pytest.raises(TargetRefused) as refused:
            await g.check(host, 80, "config.base_url")
        assert refused.value.field == "config.base_url"
        assert "INTEGRATION_ALLOWED_TARGETS" in refused.value.description
    assert await g.check("93.184.216.34", 443, "config.base_url") == ["93.184.216.34"], "public: no entry needed"


async def test_names_are_checked_after_resolution_every_address() -> None:
    g = guard(answers={"metadata.example": ["169.254.169.254"], "mixed.example": ["93.184.216.34", "10.0.0.1"]})
    with pytest.raises(TargetRefused, match=r"metadata\.example resolves to 169\.254\.169\.254, a cloud metadata"):
        await g.check("metadata.example", 80, "config.host")
    with pytest.raises(TargetRefused, match=r"resolves to 10\.0\.0\.1, a private address"):
        await g.check("mixed.example", 80, "config.host")


async def test_the_allow_list_admits_by_address_port_network_or_name() -> None:
    g = guard("127.0.0.1:8080, 10.0.0.0/8, mail.internal:25",
              answers={"mail.internal": ["192.168.7.7"], "other.internal": ["192.168.7.7"]})
    assert await g.check("127.0.0.1", 8080, "f") == ["127.0.0.1"]
    with pytest.raises(TargetRefused):
        await g.check("127.0.0.1", 8081, "f")
    assert await g.check("10.9.8.7", 1, "f") == ["10.9.8.7"]
    assert await g.check("mail.internal", 25, "f") == ["192.168.7.7"]
    with pytest.raises(TargetRefused):
        await g.check("other.internal", 25, "f")


async def test_the_mesh_itself_is_refused_even_when_admitted() -> None:
    g = guard("127.0.0.0/8, 10.0.0.0/8, ::1")
    for host, port, what in [("127.0.0.1", 5432, "PostgreSQL (DATABASE_URL)"), ("127.0.0.2", 5432, "PostgreSQL"),
                             ("[::1]", 4222, "NATS (NATS_URL)"), ("10.1.2.3", 8500, "Consul (CONSUL_HTTP_ADDR)"),
                             ("consul.internal", 8500, "Consul")]:
        with pytest.raises(TargetRefused, match="the mesh's own") as refused:
            await g.check(host, port, "config.host")
        assert what in refused.value.description and "whatever INTEGRATION_ALLOWED_TARGETS admits" in \
            refused.value.description
    assert await g.check("127.0.0.1", 5433, "config.host") == ["127.0.0.1"], "other ports of loopback: admitted"


async def test_create_time_precheck_lets_an_unresolvable_name_pass() -> None:
    async def fails(host: str, port: int) -> list[str]:
        raise OSError("no such name")
    await TargetGuard(resolve=fails).precheck("not-yet.example", 80, "config.host")


class Untouchable:
    """A session the client must never use: refused targets are refused before any request."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a connection was attempted ({name})")


async def test_clients_refuse_before_connecting() -> None:
    asked: list[str] = []
    untouchable = cast(aiohttp.ClientSession, Untouchable())
    shared = Shared(http=untouchable, targets=guard(answers={"api.example": ["169.254.169.254"]}, asked=asked))
    client = HttpClient("api", {"base_url": "http://api.example/", "auth": "bearer"}, {"token": "t0ken-value"},
                        shared)
    with pytest.raises(TargetRefused) as refused:
        await client.request("GET", "/x", timeout=1)
    assert refused.value.field == "config.base_url" and asked[0] == "api.example"

    pg = PostgresClient("db", {"host": "10.0.0.5", "dbname": "d", "user": "u"}, {"password": "pw-value"}, shared)
    with pytest.raises(TargetRefused) as refused:
        await pg.invoke("query", {"sql": "SELECT 1"}, 1)
    assert refused.value.field == "config.host" and "private" in refused.value.description


async def test_the_sessions_resolver_refuses_a_name_whose_answer_changed() -> None:
    """DNS rebinding: public when the client checked, loopback when aiohttp resolves to connect."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    g = TargetGuard(resolve=rebinding)
    async with guarded_session(g) as http:
        client = HttpClient("api", {"base_url": "http://rebind.example:9/"}, {}, Shared(http=http, targets=g))
        with pytest.raises(TargetRefused, match=r"127\.0\.0\.1, a loopback address") as refused:
            await client.request("GET", "/", timeout=2)
    assert refused.value.field == "config.base_url"


@pytest.mark.parametrize(("sql", "fragment"), [
    ("SELECT pg_read_file('/etc/hostname')", "pg_read_file"),
    ("select PG_READ_BINARY_FILE('/etc/passwd')", "pg_read_binary_file"),
    ('SELECT pg_catalog."pg_ls_dir"(\'.\')', "pg_ls_dir"),
    ("SELECT * FROM pg_stat_file('postgresql.conf')", "pg_stat_file"),
    ("SELECT lo_import('/etc/passwd')", "lo_import"),
    ("SELECT lo_get(1)", "lo_get"),
    ("SELECT * FROM dblink('host=127.0.0.1', 'select 1') AS t(x int)", "dblink"),
    ("SELECT set_config('statement_timeout', '0', true)", "set_config"),
    ("SELECT query_to_xml('select 1', true, true, '')", "query_to_xml"),
    ("SELECT pg_terminate_backend(1)", "pg_terminate_backend"),
    ("COPY (SELECT 1) TO PROGRAM 'id'", "read-only statement"),
    ("WITH x AS (SELECT 1) SELECT * FROM x; COPY t FROM '/etc/passwd'", "one statement"),
    ("SELECT 1; SELECT 2", "one statement"),
    ("SET ROLE postgres", "read-only statement"),
    ("SET SESSION AUTHORIZATION postgres", "read-only statement"),
    ("EXPLAIN ANALYZE SELECT pg_read_file('x')", "pg_read_file"),
    ("SELECT /* a */ pg_read_file/* b */('x')", "pg_read_file"),
    ('SELECT U&"pg_read\\005ffile"(\'x\')', "U&"),
    ("SELECT 'unterminated", "unterminated"),
])
def test_the_sql_screen_refuses(sql: str, fragment: str) -> None:
    reason = sql_screen.refusal(sql)
    assert reason is not None and fragment in reason, reason


@pytest.mark.parametrize("sql", [
    "SELECT 'pg_read_file(1); COPY' AS s, $$ dblink ; $$ AS t, E'it\\'s; lo_import' AS u -- pg_ls_dir; x",
    "SELECT n FROM generate_series(1, %s) n;",
    "WITH a AS (SELECT 1 AS copy_count) SELECT copy_count FROM a",
    'SELECT "Name" FROM "My Table" /* nested /* comment */ ; */',
    "SELECT pg_sleep(0.01)",
    "SELECT $1::int",
])
def test_the_sql_screen_lets_plain_reads_through(sql: str) -> None:
    assert sql_screen.refusal(sql) is None


def test_storage_roots_keep_clear_of_the_mesh_and_the_process(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("PROTOMESH_STATE_DIR", str(tmp_path / "state"))
    for root in ("/", "/proc/self", "/dev", str(tmp_path), str(tmp_path / "state" / "integration")):
        assert refused_root(root) is not None, root
    assert refused_root(str(tmp_path / "objects")) is None
