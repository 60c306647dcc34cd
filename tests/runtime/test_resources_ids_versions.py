"""Resource ids (chassis.resources.ids) and optimistic concurrency (chassis.resources.versions)."""

from __future__ import annotations

import uuid

import grpc
import pytest

from chassis.errors import Aborted, InvalidArgument, NotFound, Violations
from chassis.resources import check_expected_version, check_version, found, optional_id, resource_id


def test_an_empty_or_malformed_id_is_invalid_argument_naming_the_field() -> None:
    known = uuid.uuid4()
    assert resource_id("agent", str(known)) == known
    for bad, says in (("not-an-id", "not an agent id"), ("", "required"), ("1234", "not an agent id"),
                      ("\x00", "not an agent id")):
        with pytest.raises(InvalidArgument) as caught:
            resource_id("agent", bad)
        assert [v.field for v in caught.value.violations] == ["agent_id"]
        assert caught.value.violations[0].description.startswith(says)
    with pytest.raises(InvalidArgument) as caught:
        resource_id("agent", "nope", field="parent")
    assert [v.field for v in caught.value.violations] == ["parent"]
    assert "list the agents" in caught.value.violations[0].description


def test_found_returns_the_row_or_raises_not_found() -> None:
    assert found({"id": 1}, "layer", 1) == {"id": 1}
    assert found(0, "layer", 1) == 0  # only None means missing
    with pytest.raises(NotFound) as caught:
        found(None, "layer", uuid.UUID(int=5))
    assert caught.value.code == grpc.StatusCode.NOT_FOUND and caught.value.metadata["id"] == str(uuid.UUID(int=5))


def test_an_id_given_as_a_filter_is_a_field() -> None:
    v = Violations()
    assert optional_id(v, "", "subscription_id", "subscription") is None and not v.items
    same = uuid.uuid4()
    assert optional_id(v, str(same), "subscription_id", "subscription") == same and not v.items
    assert optional_id(v, "nope", "subscription_id", "subscription") is None
    assert [(i.field, i.description) for i in v.items] == [("subscription_id", "not a subscription id (UUID)")]


def test_expected_version_is_zero_or_positive() -> None:
    v = Violations()
    check_expected_version(v, 0)
    check_expected_version(v, 3)
    assert not v.items
    check_expected_version(v, -1)
    assert [i.field for i in v.items] == ["expected_version"]


def test_a_stale_version_is_aborted_with_one_message() -> None:
    check_version("context", "c1", current=2, expected=0)  # unconditional
    check_version("context", "c1", current=2, expected=2)
    with pytest.raises(Aborted) as caught:
        check_version("integration", "i1", current=2, expected=1)
    error = caught.value
    assert error.code == grpc.StatusCode.ABORTED
    assert "integration i1 is at version 2, not 1" in error.message and "re-read" in error.message
    assert error.metadata == {"current_version": "2", "expected_version": "1"}


def test_old_import_paths_still_work() -> None:
    from chassis import protos

    assert protos.resource_id is resource_id and protos.parse_uuid("nope") is None
