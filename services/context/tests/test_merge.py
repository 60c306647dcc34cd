"""The resolved view: layers merged in order as JSON Merge Patches (RFC 7396)."""

from __future__ import annotations

import copy

from services.context.merge import merge_patch, resolve


def test_later_layers_override_key_by_key_and_nested_objects_merge() -> None:
    base = {"model": {"name": "small", "params": {"temperature": 0.2, "top_p": 0.9}}, "lang": "en"}
    user = {"model": {"params": {"temperature": 0.7}}, "tone": "formal"}
    session = {"model": {"name": "large"}}
    assert resolve([base, user, session]) == {
        "model": {"name": "large", "params": {"temperature": 0.7, "top_p": 0.9}},
        "lang": "en",
        "tone": "formal",
    }


def test_order_matters() -> None:
    assert resolve([{"a": 1}, {"a": 2}]) == {"a": 2}
    assert resolve([{"a": 2}, {"a": 1}]) == {"a": 1}


def test_null_removes_a_key_at_any_depth() -> None:
    assert resolve([{"a": 1, "b": {"c": 1, "d": 2}}, {"a": None, "b": {"c": None}}]) == {"b": {"d": 2}}
    assert resolve([{"a": 1}, {"missing": None}]) == {"a": 1}


def test_lists_and_scalars_replace_whole() -> None:
    assert resolve([{"a": [1, 2, 3]}, {"a": [4]}]) == {"a": [4]}
    assert resolve([{"a": {"x": 1}}, {"a": 5}]) == {"a": 5}
    assert resolve([{"a": 5}, {"a": {"x": 1, "y": None}}]) == {"a": {"x": 1}}


def test_no_layers_resolve_to_an_empty_object() -> None:
    assert resolve([]) == {}


def test_inputs_are_not_modified_or_aliased() -> None:
    first, second = {"a": {"b": [1]}, "c": 1}, {"a": {"d": 2}, "c": None}
    snapshot = copy.deepcopy([first, second])
    resolved = resolve([first, second])
    resolved["a"]["b"].append(2)
    assert [first, second] == snapshot


def test_rfc7396_examples() -> None:
    target = {"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"}, "tags": ["example", "sample"],
              "content": "This will be unchanged"}
    patch = {"title": "Hello!", "phoneNumber": "+01-123-456-7890", "author": {"familyName": None}, "tags": ["example"]}
    assert merge_patch(target, patch) == {
        "title": "Hello!", "author": {"givenName": "John"}, "tags": ["example"], "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }
