"""The layer data sanitiser: plain JSON out, every bad key named by its path."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2

from chassis.errors import Violations
from services.context.payload import MAX_REPORTED, Limits, child_path, json_size, sanitize

LIMITS = Limits(max_bytes=1024, max_depth=4, max_key_length=8)


def struct(data: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(data)
    return s


def check(data: dict[str, Any] | struct_pb2.Struct, limits: Limits = LIMITS) -> tuple[Any, int, dict[str, str]]:
    v = Violations()
    clean, size = sanitize(data if isinstance(data, struct_pb2.Struct) else struct(data), "data", limits, v)
    return clean, size, {item.field: item.description for item in v.items}


def test_clean_data_comes_back_as_plain_json_with_integers() -> None:
    clean, size, problems = check({"a": {"b": [1, 2.5, "x", True, None]}, "n": 3})
    assert problems == {}
    assert clean == {"a": {"b": [1, 2.5, "x", True, None]}, "n": 3}
    assert isinstance(clean["n"], int) and isinstance(clean["a"]["b"][0], int)
    assert size == json_size(clean) == len('{"a":{"b":[1,2.5,"x",true,null]},"n":3}')


def test_control_characters_in_keys_are_named_at_any_depth() -> None:
    _, _, problems = check({"ok": {"inner": {"b\x01": 1}}, "tab\there": 1, "del\x7f": 1})
    assert problems == {
        'data.ok.inner["b\\u0001"]': "key contains the control character U+0001",
        'data["tab\\there"]': "key contains the control character U+0009",
        'data["del\\u007f"]': "key contains the control character U+007F",
    }


def test_key_length_and_empty_keys() -> None:
    _, _, problems = check({"x" * 9: 1, "x" * 8: 1, "": 1})
    assert set(problems) == {"data.xxxxxxxxx", 'data[""]'}
    assert "at most 8" in problems["data.xxxxxxxxx"]


def test_depth_counts_objects_and_lists() -> None:
    assert check({"a": {"b": {"c": 1}}})[2] == {}  # depth 3
    assert check({"a": {"b": {"c": {"d": 1}}}})[2] == {}  # depth 4, the limit
    _, _, problems = check({"a": {"b": {"c": {"d": {"e": 1}}}}})
    assert problems == {"data.a.b.c.d": "nested deeper than 4 levels"}
    assert check({"a": {"b": [[1]]}})[2] == {}  # object, object, list, list
    _, _, problems = check({"a": {"b": [[[1]]]}})
    assert problems == {"data.a.b[0][0]": "nested deeper than 4 levels"}


def test_size_limit_names_the_field_with_the_size() -> None:
    _, _, problems = check({"big": "x" * 2000})
    assert list(problems) == ["data"] and "at most 1024" in problems["data"]


def test_huge_payloads_are_refused_without_walking_them() -> None:
    _, _, problems = check({"k": ["x" * 100] * 200})
    assert problems == {"data": "larger than 1024 bytes as JSON"}


def test_values_postgres_or_json_cannot_hold() -> None:
    s = struct({"ok": 1})
    s.fields["nan"].number_value = float("nan")
    s.fields["inf"].number_value = float("inf")
    s.fields["nul"].string_value = "a\x00b"
    s.fields["unset"].CopyFrom(struct_pb2.Value())
    _, _, problems = check(s)
    assert set(problems) == {"data.nan", "data.inf", "data.nul", "data.unset"}


def test_large_integers_stay_exact_or_become_floats() -> None:
    clean, _, _ = check({"exact": 2**53, "beyond": 2.0**60})
    assert clean == {"exact": 2**53, "beyond": 2.0**60}
    assert isinstance(clean["beyond"], float)


def test_many_problems_are_capped() -> None:
    _, _, problems = check({f"k{i}\x01": 1 for i in range(MAX_REPORTED + 5)}, Limits(max_bytes=10_000))
    assert len(problems) == MAX_REPORTED + 1
    assert problems["data"] == "5 more problems not listed"


def test_child_paths_quote_only_odd_keys() -> None:
    assert child_path("data", "plain_key-1") == "data.plain_key-1"
    assert child_path("data", "with space") == 'data["with space"]'
    assert child_path("data", "a.b") == 'data["a.b"]'
