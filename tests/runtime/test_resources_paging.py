"""Keyset paging, the servicer's side (chassis.resources.paging and .tokens): sizes, tokens, pages."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from chassis.errors import InvalidArgument
from chassis.resources import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Key, Keyset, PageRequest, page_size

AGENTS = Keyset.newest_first("agents")
LAYERS = Keyset("layers", (Key("position", int),))
T0 = datetime(2025, 1, 2, 3, 4, 5, 678, tzinfo=UTC)


@dataclass(frozen=True)
class Filter:
    type: str = ""
    capabilities: tuple[str, ...] = ()
    busy: bool | None = None


@dataclass(frozen=True)
class Row:
    id: uuid.UUID
    created_at: datetime


@dataclass(frozen=True)
class Request:
    page_size: int = 0
    page_token: str = ""


def rows(n: int) -> list[Row]:
    return [Row(uuid.uuid4(), T0 - timedelta(seconds=i)) for i in range(n)]


def refused(keyset: Keyset, request: Request, filters: object) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        keyset.page(request, filters)
    return {v.field: v.description for v in caught.value.violations}


def next_token(page: PageRequest, items: list[Row]) -> str:
    return page.result(items, total_size=len(items)).next_page_token


def test_page_size_defaults_and_bounds() -> None:
    assert page_size(0) == DEFAULT_PAGE_SIZE and page_size(MAX_PAGE_SIZE) == MAX_PAGE_SIZE
    assert AGENTS.page(Request(page_size=7), Filter()).size == 7
    assert AGENTS.page(Request(), Filter()).limit == DEFAULT_PAGE_SIZE + 1
    for bad in (-1, MAX_PAGE_SIZE + 1):
        assert set(refused(AGENTS, Request(page_size=bad), Filter())) == {"page_size"}
        with pytest.raises(InvalidArgument) as caught:
            page_size(bad, "limit")
        assert caught.value.violations[0].field == "limit"


def test_one_row_more_than_the_page_means_a_next_token_that_resumes_after_the_last_item() -> None:
    flt = Filter(type="calculator", capabilities=("math",))
    first = AGENTS.page(Request(page_size=2), flt)
    items = rows(3)
    page = first.result(items, total_size=3)
    assert page.items == items[:2] and page.total_size == 3 and page.next_page_token
    assert page.page_info().next_page_token == page.next_page_token and page.page_info().total_size == 3
    second = AGENTS.page(Request(page_size=2, page_token=page.next_page_token), Filter("calculator", ("math",)))
    assert second.after == (items[1].created_at, items[1].id)
    assert first.result(items[:2], 2).next_page_token == ""  # no extra row: the last page
    assert first.result([], 0).next_page_token == ""


def test_mapping_rows_and_converted_pages() -> None:
    page = LAYERS.page(Request(page_size=1), ("ctx", ""))
    result = page.result([{"position": 4}, {"position": 9}], 2).map(lambda r: r["position"])
    assert result.items == [4] and LAYERS.page(Request(page_token=result.next_page_token), ("ctx", "")).after == (4,)


def test_a_token_reused_with_other_filters_or_on_another_list_is_refused() -> None:
    token = next_token(AGENTS.page(Request(page_size=1), Filter(type="a")), rows(2))
    for keyset, filters in ((AGENTS, Filter(type="b")), (AGENTS, Filter(type="a", busy=True)),
                            (Keyset.newest_first("contexts"), Filter(type="a"))):
        problem = refused(keyset, Request(page_token=token), filters)["page_token"]
        assert "other filters" in problem and "without page_token" in problem


def test_a_token_edited_by_hand_is_refused_with_what_to_do() -> None:
    token = next_token(AGENTS.page(Request(page_size=1), Filter()), rows(2))
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    check, body = raw[:8], json.loads(raw[8:])
    body["c"][0] = (T0 + timedelta(days=1)).isoformat()  # skip ahead: a plausible, hand-made cursor
    edited = base64.urlsafe_b64encode(check + json.dumps(body).encode()).decode().rstrip("=")
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (edited, flipped, token[:-6], "garbage", "!!!", token + "x"):
        problems = refused(AGENTS, Request(page_token=bad), Filter())
        assert set(problems) == {"page_token"}, bad
        description = problems["page_token"]
        assert "without page_token" in description
        for internals in ("JSON", "Expecting", "base64", "padding", "Error", "line 1"):
            assert internals not in description


def test_a_checksummed_token_of_the_wrong_shape_is_refused() -> None:
    # A token another list issued under a fingerprint that happens to match: the cursor has the wrong kinds.
    from chassis.resources import tokens

    fingerprint = tokens.fingerprint("agents", Filter())
    for cursor in ([1], ["2025-01-01T00:00:00", str(uuid.uuid4())], [T0.isoformat(), "not-a-uuid"], [1, 2]):
        with pytest.raises(InvalidArgument) as caught:
            AGENTS.page(Request(page_token=tokens.encode(cursor, fingerprint)), Filter())
        assert caught.value.violations[0].field == "page_token", cursor


def test_size_and_token_are_named_together() -> None:
    assert set(refused(AGENTS, Request(page_size=-5, page_token="garbage"), Filter())) == {"page_size", "page_token"}


def test_fingerprints_are_stable_and_see_every_filter() -> None:
    from chassis.resources import tokens

    a = tokens.fingerprint("x", Filter(type="t", capabilities=("b", "a")))
    assert a == tokens.fingerprint("x", Filter(type="t", capabilities=("b", "a")))
    assert a != tokens.fingerprint("x", Filter(type="t", capabilities=("a", "b")))
    assert tokens.fingerprint("x", Filter(busy=None)) != tokens.fingerprint("x", Filter(busy=False))
    assert tokens.fingerprint("x", (uuid.UUID(int=1), None)) != tokens.fingerprint("x", (uuid.UUID(int=2), None))


def test_a_key_must_be_a_kind_a_token_can_carry() -> None:
    with pytest.raises(TypeError):
        Key("score", float)
