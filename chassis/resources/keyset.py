"""Keyset paging, the SQL side: the WHERE condition, ORDER BY and LIMIT of a page, and the query that runs them.

    where, params = flt.where()          # the list's filters, "%s" placeholders
    page = await fetch_page(cur, request, select="*", from_="notifications", where=where, params=params)

runs, in the cursor's transaction,

    SELECT * FROM notifications WHERE (<filters>) AND (created_at, id) < (%s, %s)
    ORDER BY created_at DESC, id DESC LIMIT <size + 1>
    SELECT count(*) FROM notifications WHERE (<filters>)

The row comparison `(a, b) < (x, y)` is what makes the order total and lets PostgreSQL walk an
index on (a, b) from the cursor; it needs every key sorted the same way, which a Keyset guarantees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from chassis.resources.paging import Keyset, Page, PageRequest

SqlText = str | sql.Composable


def _sql(text: SqlText) -> sql.Composable:
    # Plain text is taken as SQL as it stands (no {} formatting), so filters' "%s" placeholders survive.
    return sql.SQL(text) if isinstance(text, str) else text


def _columns(keyset: Keyset, alias: str) -> list[sql.Composable]:
    return [sql.Identifier(alias, key.sql_column) if alias else sql.Identifier(key.sql_column) for key in keyset.keys]


def order_by(keyset: Keyset, alias: str = "") -> sql.Composed:
    """`created_at DESC, id DESC` (each column prefixed by `alias.` when given)."""
    direction = sql.SQL(" DESC" if keyset.descending else " ASC")
    return sql.SQL(", ").join(sql.Composed([column, direction]) for column in _columns(keyset, alias))


def after_condition(page: PageRequest, alias: str = "") -> tuple[sql.Composable, list[Any]]:
    """The condition for rows after the page's cursor, and its parameters; `TRUE` on the first page."""
    if page.after is None:
        return sql.SQL("TRUE"), []
    columns = _columns(page.keyset, alias)
    placeholders = sql.SQL(", ").join(sql.Placeholder() for _ in columns)
    operator = sql.SQL(" < " if page.keyset.descending else " > ")
    condition = sql.Composed([sql.SQL("("), sql.SQL(", ").join(columns), sql.SQL(")"), operator,
                              sql.SQL("("), placeholders, sql.SQL(")")])
    return condition, list(page.after)


def page_query(page: PageRequest, *, select: SqlText, from_: SqlText, where: SqlText = "TRUE",
               params: Sequence[Any] = (), alias: str = "") -> tuple[sql.Composed, list[Any]]:
    """The SELECT of one page (one row more than it holds) and its parameters."""
    after, after_params = after_condition(page, alias)
    query = sql.SQL("SELECT {} FROM {} WHERE ({}) AND {} ORDER BY {} LIMIT {}").format(
        _sql(select), _sql(from_), _sql(where), after, order_by(page.keyset, alias), sql.Placeholder())
    return query, [*params, *after_params, page.limit]


async def fetch_page(cur: psycopg.AsyncCursor[Any], page: PageRequest, *, select: SqlText, from_: SqlText,
                     where: SqlText = "TRUE", params: Sequence[Any] = (), alias: str = "",
                     ) -> Page[dict[str, Any]]:
    """Run a page's SELECT and the count of all matching rows on a dict_row cursor; the page with its next token.

    `select` must include the keyset's keys under their names (so `SELECT *` or the columns themselves).
    Both statements run on the caller's cursor, so inside its transaction when it has one.
    """
    query, query_params = page_query(page, select=select, from_=from_, where=where, params=params, alias=alias)
    await cur.execute(query, query_params)
    rows: list[dict[str, Any]] = list(await cur.fetchall())
    await cur.execute(sql.SQL("SELECT count(*) AS n FROM {} WHERE {}").format(_sql(from_), _sql(where)), params)
    counted = await cur.fetchone()
    return page.result(rows, int(counted["n"]) if counted else 0)
