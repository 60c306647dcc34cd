"""SQL spans for the chassis' connection pools: a psycopg cursor that records a CLIENT span per statement,
and only when the call it runs in is being recorded.

It replaces OpenTelemetry's psycopg instrumentation, which started a span (sampler, ids, context
attach, statement parsing) for every statement even inside an unsampled call, about 40-50 µs per
request; here an unsampled statement costs one context lookup. Imported only once tracing is on
(chassis.telemetry.sql_cursor_class).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from opentelemetry import trace
from psycopg import sql

_tracer = trace.get_tracer("protomesh.sql")


def _statement(query: Any, cursor: psycopg.AsyncCursor[Any]) -> str:
    if isinstance(query, str):
        return query
    if isinstance(query, bytes):
        return query.decode(errors="replace")
    if isinstance(query, sql.Composable):
        return query.as_string(cursor)
    return str(query)


def _span_attributes(statement: str, cursor: psycopg.AsyncCursor[Any]) -> tuple[str, dict[str, str]]:
    # The statement's text only, never its parameters: those may hold a secret or personal data.
    operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
    return operation, {"db.system": "postgresql", "db.name": cursor.connection.info.dbname,
                       "db.statement": statement}


class TracedCursor(psycopg.AsyncCursor[Any]):
    """An AsyncCursor whose execute/executemany run in a CLIENT span when the current span records."""

    __slots__ = ()

    async def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None,
                      binary: bool | None = None) -> TracedCursor:
        if not trace.get_current_span().is_recording():
            await super().execute(query, params, prepare=prepare, binary=binary)
            return self
        name, attributes = _span_attributes(_statement(query, self), self)
        with _tracer.start_as_current_span(name, kind=trace.SpanKind.CLIENT, attributes=attributes):
            await super().execute(query, params, prepare=prepare, binary=binary)
        return self

    async def executemany(self, query: Any, params_seq: Iterable[Any], *, returning: bool = False) -> None:
        if not trace.get_current_span().is_recording():
            await super().executemany(query, params_seq, returning=returning)
            return
        name, attributes = _span_attributes(_statement(query, self), self)
        with _tracer.start_as_current_span(name, kind=trace.SpanKind.CLIENT, attributes=attributes):
            await super().executemany(query, params_seq, returning=returning)
