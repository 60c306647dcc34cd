"""identity.audit_records: inserted by the consumer (once per record id), listed newest first. Nothing here
updates or deletes a row; the table refuses it anyway (migrations/003_audit.sql)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from chassis.protos import to_datetime
from chassis.resources import Key, Keyset, Page, PageRequest
from chassis.resources.keyset import fetch_page
from protomesh.identity.v1 import audit_pb2

RECORDS = Keyset("audit_records", (Key("occurred_at", datetime), Key("seq", int)), descending=True)
"""Newest first; seq breaks ties between records of the same instant."""

KIND_NAMES: dict[int, str] = {
    audit_pb2.AUDIT_PRINCIPAL_KIND_ANONYMOUS: "anonymous",
    audit_pb2.AUDIT_PRINCIPAL_KIND_USER: "user",
    audit_pb2.AUDIT_PRINCIPAL_KIND_SERVICE_ACCOUNT: "service_account",
    audit_pb2.AUDIT_PRINCIPAL_KIND_API_KEY: "api_key",  # pragma: allowlist secret - a principal kind's name, not a key
    audit_pb2.AUDIT_PRINCIPAL_KIND_MESH_SERVICE: "mesh_service",
}
DECISION_NAMES: dict[int, str] = {audit_pb2.AUDIT_DECISION_ALLOWED: "allowed",
                                  audit_pb2.AUDIT_DECISION_DENIED: "denied"}

_COLUMNS = ("record_id", "occurred_at", "principal", "principal_kind", "api_key_id", "client_id", "organization_id",
            "cross_org", "action", "resource", "decision", "status", "trace_id", "source_address", "service",
            "instance_id")


@dataclass(frozen=True)
class AuditFilter:
    """Which records a list shows. `organization` None means every organization (a platform admin's view)."""

    organization: str | None
    principal: str = ""
    action: str = ""
    start: datetime | None = None
    end: datetime | None = None
    decision: str = ""

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition ("%s" placeholders) and its parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.organization is not None:
            clauses.append("organization_id = %s")
            params.append(self.organization)
        if self.principal:
            clauses.append("principal = %s")
            params.append(self.principal)
        if self.action:
            clause, value = action_condition(self.action)
            clauses.append(clause)
            params.append(value)
        if self.start is not None:
            clauses.append("occurred_at >= %s")
            params.append(self.start)
        if self.end is not None:
            clauses.append("occurred_at < %s")
            params.append(self.end)
        if self.decision:
            clauses.append("decision = %s")
            params.append(self.decision)
        return " AND ".join(clauses) or "TRUE", params

    def fingerprint(self) -> dict[str, str]:
        """The filters a page token is bound to (a token of other filters is refused)."""
        return {"organization": "*" if self.organization is None else self.organization,
                "principal": self.principal, "action": self.action, "decision": self.decision,
                "start": self.start.isoformat() if self.start else "", "end": self.end.isoformat() if self.end else ""}


def action_condition(action: str) -> tuple[str, str]:
    """How an action filter matches: a gRPC path exactly (`/pkg.Service/Method`, the leading slash optional),
    a service (`pkg.Service`: every method of it) or a method name (`Method`, in any service)."""
    if "/" in action:
        return "action = %s", "/" + action.lstrip("/")
    if "." in action:
        return "split_part(action, '/', 2) = %s", action
    return "split_part(action, '/', 3) = %s", action


def record_row(event: audit_pb2.AuditRecorded, record_id: str) -> dict[str, Any]:
    """The row of an AuditRecorded event (its envelope's id is the record's id)."""
    record = event.record
    return {
        "record_id": record_id, "occurred_at": to_datetime(record.time), "principal": record.principal,
        "principal_kind": KIND_NAMES.get(record.principal_kind, "anonymous"), "api_key_id": record.api_key_id,
        "client_id": record.client_id, "organization_id": record.organization_id, "cross_org": record.cross_org,
        "action": record.action, "resource": record.resource,
        "decision": DECISION_NAMES.get(record.decision, "allowed"), "status": record.status,
        "trace_id": record.trace_id, "source_address": record.source_address, "service": record.service,
        "instance_id": record.instance_id,
    }


async def insert(conn: psycopg.AsyncConnection[Any], row: dict[str, Any]) -> bool:
    """Append one record in the caller's transaction; False when its id is already there (a redelivery)."""
    columns = ", ".join(_COLUMNS)
    values = ", ".join(f"%({c})s" for c in _COLUMNS)
    cur = await conn.execute(f"INSERT INTO audit_records ({columns}) VALUES ({values})"  # noqa: S608 (fixed names)
                             " ON CONFLICT (record_id) DO NOTHING", row)
    return cur.rowcount == 1


class AuditStore:
    """Reads the trail."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def list_records(self, flt: AuditFilter, page: PageRequest) -> Page[dict[str, Any]]:
        """One page of the records `flt` selects, newest first."""
        where, params = flt.where()
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return await fetch_page(cur, page, select="*", from_="audit_records", where=where, params=params)
