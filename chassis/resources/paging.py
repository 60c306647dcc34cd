"""Keyset paging for List RPCs, the servicer's side: page sizes, cursors, tokens and the page it returns.

A list declares its order once, as a Keyset whose last key is unique (so the order is total and a
page boundary never splits or repeats rows):

    AGENTS = Keyset.newest_first("agents")                       # created_at DESC, id DESC
    LAYERS = Keyset("layers", (Key("position", int),))           # position ASC

    page = AGENTS.page(request, flt)      # page_size and page_token checked; INVALID_ARGUMENT names them
    result = await store.list_agents(flt, page)   # the store runs chassis.resources.keyset.fetch_page
    return ListAgentsResponse(agents=[agent_message(r) for r in result.items], page_info=result.page_info())

Asking for one row more than the page holds tells whether another page follows, without a count.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from chassis.errors import FieldViolation, InvalidArgument
from chassis.resources import tokens
from protomesh.common.v1 import pagination_pb2

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

T = TypeVar("T")
U = TypeVar("U")

# How each kind of key travels in a token (JSON) and comes back; a value of the wrong shape raises.
_TO_JSON: dict[type, Callable[[Any], Any]] = {
    datetime: lambda v: v.isoformat(), uuid.UUID: str, int: int, str: str,
}


def _bad() -> Any:
    raise ValueError("not a cursor value of this list")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _bad()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else _bad()  # timestamptz comparisons need a zone


_FROM_JSON: dict[type, Callable[[Any], Any]] = {
    datetime: lambda v: _aware(datetime.fromisoformat(_text(v))), uuid.UUID: lambda v: uuid.UUID(_text(v)),
    int: lambda v: v if type(v) is int else _bad(), str: _text,
}


def page_size(value: int, field: str = "page_size") -> int:
    """0 means the default; negative or more than MAX_PAGE_SIZE is INVALID_ARGUMENT naming `field`."""
    problem = _size_problem(value)
    if problem:
        raise InvalidArgument([FieldViolation(field, problem)])
    return value or DEFAULT_PAGE_SIZE


def _size_problem(value: int) -> str:
    if 0 <= value <= MAX_PAGE_SIZE:
        return ""
    return f"must be between 0 and {MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE})"


class PageFields(Protocol):
    """The paging fields every List request has."""

    @property
    def page_size(self) -> int: ...

    @property
    def page_token(self) -> str: ...


@dataclass(frozen=True)
class Key:
    """One sort key: the row's attribute (or dict key) `name`, its Python type, and its SQL column."""

    name: str
    kind: type
    column: str = ""
    """The column or expression in SQL; the name when empty. An alias prefix is added by the query."""

    def __post_init__(self) -> None:
        if self.kind not in _TO_JSON:
            raise TypeError(f"key {self.name!r}: a keyset key is a datetime, UUID, int or str, not {self.kind}")

    @property
    def sql_column(self) -> str:
        """The column the SQL side sorts and compares on."""
        return self.column or self.name


@dataclass(frozen=True)
class Keyset:
    """The order of one list: its keys (the last one unique) and the direction of all of them."""

    list_name: str
    """Names the list in its tokens, so a token of one list is refused by another."""
    keys: tuple[Key, ...]
    descending: bool = False

    @classmethod
    def newest_first(cls, list_name: str) -> Keyset:
        """The common order: create time, newest first, ties broken by id."""
        return cls(list_name, (Key("created_at", datetime), Key("id", uuid.UUID)), descending=True)

    def page(self, request: PageFields, filters: Any, *, size_field: str = "page_size",
             token_field: str = tokens.TOKEN_FIELD) -> PageRequest:
        """The page a request asks for; a bad size and a bad token are named together in one INVALID_ARGUMENT."""
        return self.page_of(request.page_size, request.page_token, filters, size_field=size_field,
                            token_field=token_field)

    def page_of(self, size: int, token: str, filters: Any, *, size_field: str = "page_size",
                token_field: str = tokens.TOKEN_FIELD) -> PageRequest:
        """As `page`, from the values themselves."""
        violations: list[FieldViolation] = []
        problem = _size_problem(size)
        if problem:
            violations.append(FieldViolation(size_field, problem))
        fingerprint = tokens.fingerprint(self.list_name, filters)
        after = None
        if token:
            try:
                after = self._cursor(tokens.decode(token, fingerprint, token_field), token_field)
            except InvalidArgument as exc:
                violations += exc.violations
        if violations:
            raise InvalidArgument(violations)
        return PageRequest(self, size or DEFAULT_PAGE_SIZE, after, fingerprint)

    def cursor_of(self, row: Any) -> tuple[Any, ...]:
        """The key values of a row (a dataclass-like object or a mapping)."""
        if isinstance(row, Mapping):
            return tuple(row[key.name] for key in self.keys)
        return tuple(getattr(row, key.name) for key in self.keys)

    def _cursor(self, values: list[Any], field: str) -> tuple[Any, ...]:
        if len(values) != len(self.keys):
            raise tokens.refused(tokens.NOT_OURS, field)
        try:
            return tuple(_FROM_JSON[key.kind](value) for key, value in zip(self.keys, values, strict=True))
        except (ValueError, TypeError):
            raise tokens.refused(tokens.NOT_OURS, field) from None


@dataclass(frozen=True)
class PageRequest:
    """A checked request for one page: how many rows, after which cursor (None: from the start)."""

    keyset: Keyset
    size: int
    after: tuple[Any, ...] | None
    fingerprint: str

    @property
    def limit(self) -> int:
        """Rows to fetch: one more than the page holds, to learn whether another page follows."""
        return self.size + 1

    def result(self, rows: Sequence[T], total_size: int) -> Page[T]:
        """The page out of up to `limit` rows in keyset order, with the token of the next one if there is more."""
        items = list(rows[: self.size])
        token = ""
        if len(rows) > self.size and items:
            cursor = self.keyset.cursor_of(items[-1])
            token = tokens.encode([_TO_JSON[k.kind](v) for k, v in zip(self.keyset.keys, cursor, strict=True)],
                                  self.fingerprint)
        return Page(items, token, total_size)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its items, the token of the next page ("" on the last) and how many match in all."""

    items: list[T]
    next_page_token: str
    total_size: int

    def map(self, convert: Callable[[T], U]) -> Page[U]:
        """The same page with every item converted (e.g. a row dict into a row dataclass)."""
        return Page([convert(item) for item in self.items], self.next_page_token, self.total_size)

    def page_info(self) -> pagination_pb2.PageInfo:
        """The response's protomesh.common.v1.PageInfo."""
        return pagination_pb2.PageInfo(next_page_token=self.next_page_token, total_size=self.total_size)
