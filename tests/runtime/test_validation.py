"""chassis.validation: buf.validate rules in a contract, checked before the servicer, every bad field named.

The messages here come from a test-only contract compiled at test time (against the real
buf/validate/validate.proto and protomesh/common/v1/rules.proto) into a private descriptor pool,
so the tests do not depend on which service contracts carry rules yet.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from chassis import validation
from chassis.errors import InvalidArgument
from chassis.tooling.codegen import compile_files

PROBE = """\
syntax = "proto3";

package protomesh.validationprobe.v1;

import "buf/validate/validate.proto";
import "protomesh/common/v1/rules.proto";

enum Color {
  COLOR_UNSPECIFIED = 0;
  COLOR_RED = 1;
}

message Layer {
  string name = 1 [(buf.validate.field).string = {min_len: 1, max_len: 8}];
}

message CreateProbeRequest {
  string name = 1 [(buf.validate.field).string.(protomesh.common.v1.resource_name) = true];
  string title = 2 [(buf.validate.field).string = {max_len: 20, [protomesh.common.v1.display_text]: true}];
  map<string, string> labels = 3 [(buf.validate.field).map = {
    [protomesh.common.v1.labels]: true
    keys: {string: {[protomesh.common.v1.label_key]: true}}
    values: {string: {[protomesh.common.v1.label_value]: true}}
  }];
  int32 page_size = 4 [(buf.validate.field).int32 = {gte: 0, lte: 1000}];
  Color color = 5 [(buf.validate.field).enum.defined_only = true];
  string owner_id = 6 [(buf.validate.field).string.uuid = true];
  repeated Layer layers = 7 [(buf.validate.field).repeated.max_items = 3];
  map<int32, Layer> by_position = 8;
  string ttl = 9;
  string expire_time = 10;
  option (buf.validate.message).cel = {
    id: "ttl.not_with_expire_time"
    message: "give expire_time or ttl, not both"
    expression: "this.ttl == '' || this.expire_time == ''"
  };
  option (buf.validate.message).cel = {
    id: "no_lucky_number"
    message: "7 is reserved"
    expression: "this.page_size != 7"
  };
}

message Plain {
  string name = 1;
  int32 count = 2;
  map<string, string> labels = 3;
}

message Outer {
  Wrapper wrapper = 1;
}

message Wrapper {
  map<string, Layer> layers = 1;
}

message Tree {
  string label = 1;
  repeated Tree children = 2;
}
"""

OWNER = "5f0c6f2e-3c1a-4b8e-9d3f-1a2b3c4d5e6f"


@pytest.fixture(scope="module")
def probe_types(tmp_path_factory: pytest.TempPathFactory) -> dict[str, type[Message]]:
    """The probe contract's message classes, by short name, from a private descriptor pool."""
    root = tmp_path_factory.mktemp("probe")
    path = Path("protomesh/validationprobe/v1/probe.proto")
    (root / path).parent.mkdir(parents=True)
    (root / path).write_text(PROBE)
    pool = descriptor_pool.DescriptorPool()
    for file in compile_files([str(path)], root).file:
        pool.Add(file)
    names = ("CreateProbeRequest", "Layer", "Plain", "Outer", "Wrapper", "Tree")
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"protomesh.validationprobe.v1.{n}"))
            for n in names}


def valid_request(types: dict[str, type[Message]], **fields: Any) -> Message:
    values: dict[str, Any] = {"name": "billing agent", "title": "Billing", "owner_id": OWNER, **fields}
    return types["CreateProbeRequest"](**values)


def bad_fields(message: Message) -> dict[str, str]:
    """Field path -> description of every violation, as check_request reports them."""
    with pytest.raises(InvalidArgument) as caught:
        validation.check_request(message)
    return {v.field: v.description for v in caught.value.violations}


def test_a_valid_request_passes(probe_types: dict[str, type[Message]]) -> None:
    request = valid_request(probe_types, labels={"team": "core"}, page_size=1000, color=1)
    validation.check_request(request)
    assert validation.violations(request) == []


def test_every_broken_rule_is_named_at_once_with_its_field_path(probe_types: dict[str, type[Message]]) -> None:
    layer = probe_types["Layer"]
    request = valid_request(
        probe_types, name="!bad", page_size=1001, color=7, owner_id="not-a-uuid",
        layers=[layer(name="ok"), layer(name="")], by_position={3: layer(name="x" * 9)},
    )
    bad = bad_fields(request)
    assert set(bad) == {"name", "page_size", "color", "owner_id", "layers[1].name", "by_position[3].name"}
    assert "1000" in bad["page_size"]
    assert "at least 1" in bad["layers[1].name"] and "at most 8" in bad["by_position[3].name"]


def test_the_error_carries_a_bad_request_naming_each_field(probe_types: dict[str, type[Message]]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validation.check_request(valid_request(probe_types, name="", page_size=-1))
    error = caught.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    packed = [d for d in error.details() if d.Is(error_details_pb2.BadRequest.DESCRIPTOR)]
    assert len(packed) == 1
    bad_request = error_details_pb2.BadRequest()
    packed[0].Unpack(bad_request)
    assert sorted(v.field for v in bad_request.field_violations) == ["name", "page_size"]
    assert all(v.description for v in bad_request.field_violations)


def test_map_keys_are_named_like_the_services_name_json_keys(probe_types: dict[str, type[Message]]) -> None:
    bad = bad_fields(valid_request(probe_types, labels={"Bad Key": "v", "team": "a\nb", "ok": "x" * 257}))
    assert set(bad) == {'labels["Bad Key"]', "labels.team", "labels.ok"}
    assert bad['labels["Bad Key"]'].startswith("key: label keys are 1-63")
    assert "control characters" in bad["labels.team"] and "256" in bad["labels.ok"]


def test_message_rules_name_the_field_their_id_starts_with(probe_types: dict[str, type[Message]]) -> None:
    bad = bad_fields(valid_request(probe_types, ttl="60s", expire_time="2030-01-01T00:00:00Z"))
    assert bad == {"ttl": "give expire_time or ttl, not both"}
    # An id that names no field: the whole request is at fault.
    assert bad_fields(valid_request(probe_types, page_size=7)) == {"request": "7 is reserved"}


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("billing agent", True), ("a", True), ("A-1_b.c", True), ("x" * 128, True), ("report.", True),
        ("", False), ("!bad", False), (" leading", False), ("trailing ", False), ("a\nb", False),
        ("x" * 129, False), ("naïve", False), ("semi;colon", False),
    ],
)
def test_the_resource_name_rule(probe_types: dict[str, type[Message]], name: str, ok: bool) -> None:
    found = {v.field: v.description for v in validation.violations(valid_request(probe_types, name=name))}
    assert ("name" not in found) is ok, found
    if name == "":
        assert found["name"].startswith("required")


@pytest.mark.parametrize(
    ("title", "ok"),
    [
        ("Billing", True), ("Résumé — Q3 (draft)", True), ("x" * 20, True),
        ("", False), ("   ", False), (" padded", False), ("padded ", False), ("a\u0007b", False),
        ("two\nlines", False), ("tab\there", False), ("x" * 21, False),
    ],
)
def test_the_display_text_rule(probe_types: dict[str, type[Message]], title: str, ok: bool) -> None:
    found = {v.field: v.description for v in validation.violations(valid_request(probe_types, title=title))}
    assert ("title" not in found) is ok, found


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("team", True), ("a", True), ("app.kubernetes.io/name", True), ("x" * 63, True), ("v1-2_3", True),
        ("", False), ("Team", False), ("bad key", False), ("-lead", False), ("trail-", False), ("x" * 64, False),
    ],
)
def test_the_label_key_rule(probe_types: dict[str, type[Message]], key: str, ok: bool) -> None:
    found = validation.violations(valid_request(probe_types, labels={key: "v"}))
    assert (found == []) is ok, found


def test_the_labels_rule_limits_their_number(probe_types: dict[str, type[Message]]) -> None:
    at_limit = {f"k{i}": "" for i in range(32)}
    assert validation.violations(valid_request(probe_types, labels=at_limit)) == []
    over = bad_fields(valid_request(probe_types, labels={**at_limit, "one-more": "v"}))
    assert over == {"labels": "at most 32 labels; remove some"}


def test_a_type_without_rules_is_skipped_without_calling_the_validator(
    probe_types: dict[str, type[Message]], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = probe_types["Plain"](name="!!", labels={"Bad Key": ""})
    assert not validation.has_rules(type(plain))

    class Refuses:
        def collect_violations(self, message: Message) -> list[Any]:
            raise AssertionError(f"{message.DESCRIPTOR.full_name} has no rules and should not be validated")

    monkeypatch.setattr(validation, "_validator", Refuses())
    validation.check_request(plain)

    rounds = 20_000
    started = time.perf_counter()
    for _ in range(rounds):
        validation.check_request(plain)
    per_call = (time.perf_counter() - started) / rounds
    # A dict lookup per call; the bound is loose so a busy machine does not fail it.
    assert per_call < 5e-6, f"{per_call * 1e6:.2f} µs per call for a message without rules"


def test_rules_of_contained_messages_count_and_recursive_types_end(probe_types: dict[str, type[Message]]) -> None:
    # Outer declares nothing itself; a Layer inside a map inside Wrapper does.
    assert validation.has_rules(probe_types["Outer"])
    outer = probe_types["Outer"]()
    outer.wrapper.layers["first"].name = ""
    assert bad_fields(outer) == {"wrapper.layers.first.name": "must be at least 1 characters"}
    assert not validation.has_rules(probe_types["Tree"])


async def test_validate_before_runs_the_handler_only_for_valid_requests(
    probe_types: dict[str, type[Message]]
) -> None:
    calls: list[Message] = []

    async def handler(request: Message, context: grpc.aio.ServicerContext) -> str:
        calls.append(request)
        return "served"

    wrapped = validation.validate_before(handler)
    context: Any = None  # the wrapper does not touch the context
    good = valid_request(probe_types)
    assert await wrapped(good, context) == "served"
    with pytest.raises(InvalidArgument):
        await wrapped(valid_request(probe_types, name=""), context)
    assert calls == [good]
