"""Keyset paging, the SQL side (chassis.resources.keyset), against a real PostgreSQL.

Rows share create times on purpose: only the id tie-break keeps page boundaries from skipping or
repeating them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from chassis.errors import InvalidArgument
from chassis.resources import Key, Keyset, PageRequest
from chassis.resources.keyset import fetch_page, order_by, page_query
from chassis.tooling.infra.postgres import PostgresProcess

THINGS = Keyset.newest_first("things")
STEPS = Keyset("steps", (Key("position", int),))
T0 = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def database_url(postgres: PostgresProcess) -> str:
    return postgres.create_database("resources_keyset")


@pytest.fixture
async def cur(database_url: str) -> AsyncIterator[psycopg.AsyncCursor[Any]]:
    """A cursor in a transaction that is rolled back, on tables of its own."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "CREATE TEMP TABLE things (id uuid PRIMARY KEY, kind text NOT NULL, created_at timestamptz NOT NULL);"
            "CREATE TEMP TABLE owners (thing_id uuid NOT NULL, owner text NOT NULL);"
            "CREATE TEMP TABLE steps (position int PRIMARY KEY, name text NOT NULL)")
        # 23 things over 5 distinct times (so most share a time with others), two kinds.
        things = [(uuid.uuid4(), "even" if i % 2 == 0 else "odd", T0 + timedelta(microseconds=i % 5))
                  for i in range(23)]
        await cur.executemany("INSERT INTO things VALUES (%s, %s, %s)", things)
        await cur.executemany("INSERT INTO owners VALUES (%s, %s)", [(t[0], "team") for t in things])
        await cur.executemany("INSERT INTO steps VALUES (%s, %s)", [(p, f"s{p}") for p in range(10, 0, -1)])
        yield cur
        await conn.rollback()


async def walk(cur: psycopg.AsyncCursor[Any], keyset: Keyset, size: int, filters: Any, **query: Any,
               ) -> tuple[list[dict[str, Any]], list[int]]:
    """Every page of a list through its tokens: all rows in order, and each page's total_size."""
    seen: list[dict[str, Any]] = []
    totals: list[int] = []
    token = ""
    for _ in range(100):  # more pages than any walk here has: a cursor that does not advance fails, not hangs
        page = keyset.page_of(size, token, filters)
        result = await fetch_page(cur, page, **query)
        assert len(result.items) <= size
        seen += result.items
        totals.append(result.total_size)
        token = result.next_page_token
        if not token:
            return seen, totals
    raise AssertionError("the pages never ended")


async def test_newest_first_pages_visit_every_row_once_in_order(cur: psycopg.AsyncCursor[Any]) -> None:
    for size in (1, 4, 5, 22, 23, 50):
        seen, totals = await walk(cur, THINGS, size, "all", select="*", from_="things")
        keys = [(r["created_at"], r["id"]) for r in seen]
        assert keys == sorted(keys, reverse=True) and len(set(keys)) == 23, size
        assert set(totals) == {23}


async def test_filters_and_a_joined_table_with_an_alias(cur: psycopg.AsyncCursor[Any]) -> None:
    seen, totals = await walk(cur, THINGS, 3, ("odd", "team"), select="t.*", alias="t",
                              from_="things t JOIN owners o ON o.thing_id = t.id",
                              where="t.kind = %s AND o.owner = %s", params=["odd", "team"])
    assert len(seen) == 11 and {r["kind"] for r in seen} == {"odd"} and set(totals) == {11}
    keys = [(r["created_at"], r["id"]) for r in seen]
    assert keys == sorted(keys, reverse=True)


async def test_ascending_by_a_unique_position(cur: psycopg.AsyncCursor[Any]) -> None:
    seen, _ = await walk(cur, STEPS, 4, ("ctx",), select="*", from_="steps")
    assert [r["position"] for r in seen] == list(range(1, 11))


async def test_rows_added_while_paging_do_not_shift_later_pages(cur: psycopg.AsyncCursor[Any]) -> None:
    # Offset paging would repeat a row here; a keyset cursor resumes after the last row it returned.
    first = await fetch_page(cur, THINGS.page_of(5, "", None), select="*", from_="things")
    await cur.execute("INSERT INTO things VALUES (%s, 'even', %s)", (uuid.uuid4(), T0 + timedelta(days=1)))
    second = await fetch_page(cur, THINGS.page_of(5, first.next_page_token, None), select="*", from_="things")
    assert not {r["id"] for r in first.items} & {r["id"] for r in second.items}
    assert second.total_size == 24


async def test_the_rendered_sql(cur: psycopg.AsyncCursor[Any]) -> None:
    assert order_by(THINGS, "a").as_string(cur) == '"a"."created_at" DESC, "a"."id" DESC'
    after = THINGS.page_of(2, "", None).result([{"created_at": T0, "id": uuid.UUID(int=1)}] * 3, 3)
    page: PageRequest = THINGS.page_of(2, after.next_page_token, None)
    query, params = page_query(page, select="*", from_="things", where="kind = %s", params=["odd"])
    assert query.as_string(cur) == (
        'SELECT * FROM things WHERE (kind = %s) AND ("created_at", "id") < (%s, %s)'
        ' ORDER BY "created_at" DESC, "id" DESC LIMIT %s')
    assert params == ["odd", T0, uuid.UUID(int=1), 3]


async def test_a_token_for_other_filters_never_reaches_the_database(cur: psycopg.AsyncCursor[Any]) -> None:
    first = await fetch_page(cur, THINGS.page_of(2, "", "even"), select="*", from_="things",
                             where="kind = %s", params=["even"])
    with pytest.raises(InvalidArgument):
        THINGS.page_of(2, first.next_page_token, "odd")
