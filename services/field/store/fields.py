"""Fields and their boundary history: create, read, list, update, archive, change the boundary, read at a time.

Every caller-facing query carries the caller's organization (chassis.authz.organization_scope); writes that
place a boundary hold the organization's boundary lock (base.lock_boundaries) while checking overlaps. A
boundary change closes the current version at the new one's valid_from, so versions never overlap in time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from chassis.authz import organization_scope as scope
from chassis.errors import AlreadyExists, FailedPrecondition, NotFound
from chassis.resources import Page, PageRequest
from chassis.resources.keyset import fetch_page
from services.field import events
from services.field.measures import refuse
from services.field.rows import FIELD_COLUMNS, MEASURE_COLUMNS, FieldRow, VersionRow, measure_values
from services.field.store import overlaps
from services.field.store.base import Cursor, Queries, lock_boundaries, publish

if TYPE_CHECKING:
    from services.field.geometry import Boundary

_SELECT = sql.SQL(", ").join(map(sql.Identifier, FIELD_COLUMNS))
_SELECT_WITH_BOUNDARY = sql.SQL("{}, boundary").format(_SELECT)


@dataclass(frozen=True)
class FieldFilter:
    """ListFields' filters."""

    farm_id: uuid.UUID | None = None
    status: str = ""
    label_key: str = ""
    label_value: str | None = None
    name_contains: str = ""

    def where(self) -> tuple[sql.Composable, list[Any]]:
        """The conditions, the caller's organization first, and their parameters."""
        tenancy, params = scope()
        clauses: list[sql.Composable] = [tenancy]
        if self.farm_id:
            clauses.append(sql.SQL("farm_id = %s"))
            params.append(self.farm_id)
        if self.status:
            clauses.append(sql.SQL("status = %s"))
            params.append(self.status)
        if self.label_key:
            if self.label_value is None:
                clauses.append(sql.SQL("labels ? %s"))
                params.append(self.label_key)
            else:
                clauses.append(sql.SQL("labels @> %s"))
                params.append(Jsonb({self.label_key: self.label_value}))
        if self.name_contains:
            clauses.append(sql.SQL("strpos(lower(name), lower(%s)) > 0"))
            params.append(self.name_contains)
        return sql.SQL(" AND ").join(clauses), params


@dataclass(frozen=True)
class NewField:
    """What a new field is made of (by CreateField, an import, a split or a merge)."""

    name: str
    boundary: Boundary | None
    labels: dict[str, str]
    notes: str = ""
    reason: str = "created"
    predecessors: tuple[uuid.UUID, ...] = ()


def name_taken(name: str, field: str = "name") -> AlreadyExists:
    """A name already used by an active field of the farm."""
    return AlreadyExists(f"an active field named {name!r} already exists in this farm", metadata={"field": field})


_FIELD_INSERT_COLUMNS = ("id", "organization_id", "farm_id", "name", "labels", "notes", "predecessor_ids",
                         "created_at", "boundary", "boundary_wkb", "boundary_version", "boundary_valid_from",
                         *MEASURE_COLUMNS)
_VERSION_INSERT_COLUMNS = ("field_id", "organization_id", "version", "boundary", "valid_from", "reason",
                           *MEASURE_COLUMNS)


def _insert_sql(table: str, columns: tuple[str, ...]) -> sql.Composed:
    # Composed once per table at import: an import of 1,000 fields would otherwise compose 2,000 statements.
    return sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)))


_FIELD_INSERT = _insert_sql("fields", _FIELD_INSERT_COLUMNS)
_VERSION_INSERT = _insert_sql("boundary_versions", _VERSION_INSERT_COLUMNS)
_NO_MEASURES: dict[str, Any] = {column: None for column in MEASURE_COLUMNS} | {"vertex_count": 0}


def _version_values(field_id: uuid.UUID, organization: str, version: int, boundary: Boundary, valid_from: datetime,
                    reason: str) -> list[Any]:
    values = {"field_id": field_id, "organization_id": organization, "version": version,
              "boundary": Jsonb(boundary.geojson), "valid_from": valid_from, "reason": reason,
              **measure_values(boundary)}
    return [values[c] for c in _VERSION_INSERT_COLUMNS]


async def insert_many(cur: Cursor, organization: str, farm_id: uuid.UUID, news: list[NewField],
                      now: datetime) -> list[FieldRow]:
    """Insert fields (each with its first boundary version and its FieldCreated event) in the caller's
    transaction, the statements pipelined: an import's cost is then the database's work, not round trips."""
    ids = [uuid.uuid4() for _ in news]
    field_rows, version_rows = [], []
    for field_id, new in zip(ids, news, strict=True):
        values: dict[str, Any] = {
            "id": field_id, "organization_id": organization, "farm_id": farm_id, "name": new.name,
            "labels": Jsonb(new.labels), "notes": new.notes, "predecessor_ids": list(new.predecessors),
            "created_at": now, "boundary": None, "boundary_wkb": None, "boundary_version": 0,
            "boundary_valid_from": None, **_NO_MEASURES}
        if new.boundary is not None:
            values |= {"boundary": Jsonb(new.boundary.geojson), "boundary_wkb": new.boundary.wkb,
                       "boundary_version": 1, "boundary_valid_from": now, **measure_values(new.boundary)}
            version_rows.append(_version_values(field_id, organization, 1, new.boundary, now, new.reason))
        field_rows.append([values[c] for c in _FIELD_INSERT_COLUMNS])
    await cur.executemany(_FIELD_INSERT, field_rows)
    if version_rows:
        await cur.executemany(_VERSION_INSERT, version_rows)
    await cur.execute(sql.SQL("SELECT {} FROM fields WHERE id = ANY(%s)").format(_SELECT_WITH_BOUNDARY), (ids,))
    by_id = {r["id"]: FieldRow.of(r) for r in await cur.fetchall()}
    rows = [by_id[i] for i in ids]
    async with cur.connection.pipeline():
        for row in rows:
            await publish(cur, events.created(row), events.field_subject(row.id))
    return rows


async def insert(cur: Cursor, organization: str, farm_id: uuid.UUID, new: NewField, now: datetime) -> FieldRow:
    """Insert one field (insert_many of one)."""
    return (await insert_many(cur, organization, farm_id, [new], now))[0]


async def _insert_version(cur: Cursor, row: FieldRow, version: int, boundary: Boundary, valid_from: datetime,
                          reason: str) -> None:
    await cur.execute(_VERSION_INSERT, _version_values(row.id, row.organization_id, version, boundary, valid_from,
                                                       reason))


async def archive_in(cur: Cursor, row: FieldRow, now: datetime, successors: list[uuid.UUID]) -> FieldRow:
    """Archive an active field in the caller's transaction: its current version ends now; FieldArchived."""
    await cur.execute("UPDATE boundary_versions SET valid_to = %s WHERE field_id = %s AND valid_to IS NULL",
                      (now, row.id))
    await cur.execute(sql.SQL("UPDATE fields SET status = 'ARCHIVED', archived_at = %s, successor_ids = %s"
                              " WHERE id = %s RETURNING {}").format(_SELECT), (now, successors, row.id))
    archived = FieldRow.of(await cur.fetchone() or {})
    await publish(cur, events.archived(archived), events.field_subject(row.id))
    return archived


async def locked(cur: Cursor, field_id: uuid.UUID, *, with_boundary: bool = False) -> FieldRow:
    """The caller's organization's field, locked for the transaction; NOT_FOUND otherwise."""
    tenancy, params = scope()
    await cur.execute(sql.SQL("SELECT {} FROM fields WHERE id = %s AND {} FOR UPDATE").format(
        _SELECT_WITH_BOUNDARY if with_boundary else _SELECT, tenancy), [field_id, *params])
    row = await cur.fetchone()
    if row is None:
        raise NotFound("field", str(field_id))
    return FieldRow.of(row)


def must_be_active(row: FieldRow, action: str) -> None:
    """FAILED_PRECONDITION unless the field is active."""
    if row.status != "ACTIVE":
        raise FailedPrecondition(f"field {row.id} is archived; only an active field can be {action}",
                                 metadata={"status": row.status})


async def organization_of(cur: Cursor, field_id: uuid.UUID) -> str:
    """The organization of the caller's field (for the boundary lock, taken before the row lock); NOT_FOUND."""
    tenancy, params = scope()
    await cur.execute(sql.SQL("SELECT organization_id FROM fields WHERE id = %s AND {}").format(tenancy),
                      [field_id, *params])
    row = await cur.fetchone()
    if row is None:
        raise NotFound("field", str(field_id))
    return str(row["organization_id"])


class FieldStore(Queries):
    """The fields and boundary_versions tables."""

    async def create(self, organization: str, farm_id: uuid.UUID, new: NewField,
                     allow_overlap: bool) -> tuple[FieldRow, list[overlaps.Overlap]]:
        """Insert a field in a farm of `organization`; its boundary's overlaps refused unless allowed."""
        now = datetime.now(UTC)
        try:
            async with self._write(keyed=True) as cur:
                await cur.execute("SELECT 1 FROM farms WHERE id = %s AND organization_id = %s FOR SHARE",
                                  (farm_id, organization))
                if await cur.fetchone() is None:
                    raise NotFound("farm", str(farm_id))
                found: list[overlaps.Overlap] = []
                if new.boundary is not None:
                    await lock_boundaries(cur, organization)
                    found = await overlaps.find(cur, organization, new.boundary.shape)
                    if found and not allow_overlap:
                        raise overlaps.OverlapRefused(found)
                row = await insert(cur, organization, farm_id, new, now)
        except psycopg.errors.UniqueViolation:
            raise name_taken(new.name) from None
        return row, found

    async def get(self, field_id: uuid.UUID, *, with_boundary: bool = True) -> FieldRow | None:
        """One field of the caller's organization, or None."""
        tenancy, params = scope()
        row = await self._one(sql.SQL("SELECT {} FROM fields WHERE id = %s AND {}").format(
            _SELECT_WITH_BOUNDARY if with_boundary else _SELECT, tenancy), [field_id, *params])
        return FieldRow.of(row) if row else None

    async def list_page(self, flt: FieldFilter, page: PageRequest) -> Page[FieldRow]:
        """A page of matching fields (without boundaries) and how many match."""
        where, params = flt.where()
        async with self._read() as cur:
            raw = await fetch_page(cur, page, select=_SELECT, from_="fields", where=where, params=params)
        return raw.map(FieldRow.of)

    async def update(self, field_id: uuid.UUID, changes: dict[str, Any]) -> FieldRow:
        """Replace name, labels or notes of an active field; NOT_FOUND, FAILED_PRECONDITION, ALREADY_EXISTS."""
        try:
            async with self._write() as cur:
                must_be_active(await locked(cur, field_id), "changed")
                if not changes:
                    return await locked(cur, field_id, with_boundary=True)
                values = {k: Jsonb(v) if k == "labels" else v for k, v in changes.items()}
                await cur.execute(sql.SQL("UPDATE fields SET {} WHERE id = %s RETURNING {}").format(
                    sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in values),
                    _SELECT_WITH_BOUNDARY), [*values.values(), field_id])
                return FieldRow.of(await cur.fetchone() or {})
        except psycopg.errors.UniqueViolation:
            raise name_taken(str(changes.get("name"))) from None

    async def archive(self, field_id: uuid.UUID) -> FieldRow:
        """Archive an active field (an archived one is answered as it is: archiving is idempotent)."""
        async with self._write() as cur:
            row = await locked(cur, field_id)
            if row.status == "ARCHIVED":
                return row
            return await archive_in(cur, row, datetime.now(UTC), [])

    async def change_boundary(self, field_id: uuid.UUID, boundary: Boundary, valid_from: datetime | None,
                              allow_overlap: bool) -> tuple[FieldRow, list[overlaps.Overlap]]:
        """A new boundary version from valid_from (now when None); the current one ends then. BoundaryChanged."""
        async with self._write(keyed=True) as cur:
            await lock_boundaries(cur, await organization_of(cur, field_id))
            row = await locked(cur, field_id)
            must_be_active(row, "given a new boundary")
            # "Now" is read once the field is locked: a concurrent redraw of it has committed its start by then.
            start = valid_from or datetime.now(UTC)
            if row.boundary_valid_from is not None and start <= row.boundary_valid_from:
                raise refuse("valid_from", f"must be after the current boundary's start "
                                           f"({row.boundary_valid_from.isoformat()}): versions follow each other")
            found = await overlaps.find(cur, row.organization_id, boundary.shape, exclude=[row.id])
            if found and not allow_overlap:
                raise overlaps.OverlapRefused(found)
            await cur.execute("UPDATE boundary_versions SET valid_to = %s WHERE field_id = %s AND valid_to IS NULL",
                              (start, row.id))
            version = row.boundary_version + 1
            await _insert_version(cur, row, version, boundary, start, "redrawn")
            values = {"boundary": Jsonb(boundary.geojson), "boundary_wkb": boundary.wkb, "boundary_version": version,
                      "boundary_valid_from": start, **measure_values(boundary)}
            await cur.execute(sql.SQL("UPDATE fields SET {} WHERE id = %s RETURNING {}").format(
                sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in values),
                _SELECT_WITH_BOUNDARY), [*values.values(), row.id])
            changed = FieldRow.of(await cur.fetchone() or {})
            old_m2 = row.measures.area_m2 if row.measures else 0.0
            await publish(cur, events.boundary_changed(changed, old_m2, boundary.measures.area_m2, start),
                          events.field_subject(row.id))
        return changed, found

    async def version_at(self, field_id: uuid.UUID, at: datetime) -> VersionRow | None:
        """The boundary version of the caller's field valid at `at`, or None (NOT_FOUND for an unknown field)."""
        tenancy, params = scope()
        row = await self._one(sql.SQL(
            "SELECT * FROM boundary_versions WHERE field_id = %s AND valid_from <= %s"
            " AND (valid_to IS NULL OR valid_to > %s) AND {}").format(tenancy), [field_id, at, at, *params])
        return VersionRow.of(row) if row else None

    async def versions_page(self, field_id: uuid.UUID, page: PageRequest) -> Page[VersionRow]:
        """A page of the caller's field's versions, newest first."""
        tenancy, params = scope()
        where = sql.SQL("field_id = %s AND {}").format(tenancy)
        async with self._read() as cur:
            raw = await fetch_page(cur, page, select="*", from_="boundary_versions", where=where,
                                   params=[field_id, *params])
        return raw.map(VersionRow.of)

    async def count_active(self) -> int:
        """The caller's organization's active fields."""
        tenancy, params = scope()
        row = await self._one(sql.SQL("SELECT count(*) AS n FROM fields WHERE status = 'ACTIVE' AND {}").format(
            tenancy), params)
        return int(row["n"]) if row else 0


    async def for_export(self, farm_id: uuid.UUID | None, limit: int) -> list[FieldRow]:
        """Up to limit + 1 active fields with a boundary (of one farm when given), by name, boundaries included."""
        tenancy, params = scope()
        where = sql.SQL("status = 'ACTIVE' AND boundary IS NOT NULL AND {}").format(tenancy)
        if farm_id is not None:
            where = sql.SQL("{} AND farm_id = %s").format(where)
            params.append(farm_id)
        rows = await self._all(sql.SQL("SELECT {} FROM fields WHERE {} ORDER BY name, id LIMIT %s").format(
            _SELECT_WITH_BOUNDARY, where), [*params, limit + 1])
        return [FieldRow.of(r) for r in rows]
