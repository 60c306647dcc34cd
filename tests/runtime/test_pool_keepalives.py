"""The chassis' pool notices a vanished peer: TCP keepalives and a user timeout on both ends of a connection."""

from __future__ import annotations

import pytest

from chassis import db
from tests.support.infra_fixtures import session_postgres


async def test_pool_connections_over_tcp_carry_keepalives_on_both_ends(pytestconfig: pytest.Config) -> None:
    server = session_postgres(pytestconfig)
    assert not server.host.startswith("/"), "the test server is reached over TCP"
    pool = db.open_pool(server.url, "public", min_size=1, max_size=1, timeout=10)
    await pool.open(wait=True)
    try:
        async with pool.connection() as conn:
            # PostgreSQL's side: settable per session, and only meaningful (non-zero) on a TCP connection.
            shown = {name: (await (await conn.execute(f"SHOW {name}")).fetchone() or ("",))[0]
                     for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")}
            assert shown == {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5",
                             "tcp_keepalives_count": "3"}
            # The client's side: libpq sets them on its socket from the connection parameters.
            parameters = conn.info.get_parameters()
            assert parameters["keepalives_idle"] == "10" and parameters["tcp_user_timeout"] == "20000"
            assert (await (await conn.execute("SHOW search_path")).fetchone() or ("",))[0] == "public"
    finally:
        await pool.close()
