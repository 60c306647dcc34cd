"""Update masks (chassis.resources.masks) read from the real Update requests of the services' contracts."""

from __future__ import annotations

import pytest
from google.protobuf import field_mask_pb2, struct_pb2

from chassis.errors import InvalidArgument, Violations
from chassis.resources import UpdateMask
from protomesh.agent.v1 import agent_pb2, agent_service_pb2
from protomesh.context.v1 import context_pb2, context_service_pb2
from protomesh.notification.v1 import notification_pb2, notification_service_pb2

AGENT = UpdateMask.of(agent_service_pb2.UpdateAgentRequest, resource=agent_pb2.Agent)
CONTEXT = UpdateMask.of(context_service_pb2.UpdateContextRequest, resource=context_pb2.Context)
SUBSCRIPTION = UpdateMask.of(notification_service_pb2.UpdateSubscriptionRequest,
                             resource=notification_pb2.Subscription)


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def violations(rules: UpdateMask, request: object) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        rules.paths(request)  # type: ignore[arg-type]
    return {v.field: v.description for v in caught.value.violations}


def test_fields_come_from_the_request_without_ids_or_call_conditions() -> None:
    assert AGENT.fields == ("name", "description", "capabilities", "config", "labels")
    assert CONTEXT.fields == ("name", "metadata", "tags", "status", "expire_time", "ttl")
    # A real oneof is one path; proto3 `optional` fields are plain fields.
    assert SUBSCRIPTION.fields == ("name", "event_types", "subject_filter", "channel", "enabled")


def test_without_a_mask_the_fields_set_change() -> None:
    request = agent_service_pb2.UpdateAgentRequest(agent_id="x", description="", labels={"a": "1"})
    assert AGENT.paths(request) == ("description", "labels")  # an optional field set to "" counts
    request2 = context_service_pb2.UpdateContextRequest(status=context_pb2.CONTEXT_STATUS_ARCHIVED,
                                                        metadata=struct_pb2.Struct(), expected_version=3)
    assert CONTEXT.paths(request2) == ("metadata", "status")
    request3 = notification_service_pb2.UpdateSubscriptionRequest(
        webhook=notification_pb2.WebhookChannel(url="https://x"))
    assert SUBSCRIPTION.paths(request3) == ("channel",)


def test_mask_paths_keep_the_callers_order_and_drop_repeats() -> None:
    request = agent_service_pb2.UpdateAgentRequest(name="n", update_mask=mask("labels", "name", "labels", "name"))
    assert AGENT.paths(request) == ("labels", "name")


def test_nothing_to_update_names_update_mask() -> None:
    assert set(violations(AGENT, agent_service_pb2.UpdateAgentRequest(agent_id="x"))) == {"update_mask"}
    assert "nothing to update" in violations(AGENT, agent_service_pb2.UpdateAgentRequest(update_mask=mask()))[
        "update_mask"]


def test_unknown_immutable_and_oneof_member_paths_are_named_with_their_index() -> None:
    found = violations(AGENT, agent_service_pb2.UpdateAgentRequest(
        update_mask=mask("name", "type", "name", "colour", "agent_id")))
    assert set(found) == {"update_mask.paths[1]", "update_mask.paths[3]", "update_mask.paths[4]"}
    assert "'type' cannot be changed" in found["update_mask.paths[1]"]
    assert "unknown field 'colour'" in found["update_mask.paths[3]"]
    assert "cannot be changed" in found["update_mask.paths[4]"]
    owner = violations(CONTEXT, context_service_pb2.UpdateContextRequest(update_mask=mask("owner")))
    assert "'owner' cannot be changed" in owner["update_mask.paths[0]"]
    member = violations(SUBSCRIPTION, notification_service_pb2.UpdateSubscriptionRequest(update_mask=mask("email")))
    assert "mask 'channel'" in member["update_mask.paths[0]"]


def test_a_bad_path_is_not_also_reported_as_nothing_to_update() -> None:
    assert set(violations(AGENT, agent_service_pb2.UpdateAgentRequest(update_mask=mask("type")))) == {
        "update_mask.paths[0]"}


def test_violations_join_the_calls_others_instead_of_raising() -> None:
    v = Violations()
    v.add("expected_version", "must be 0 (unconditional) or the version you read")
    assert CONTEXT.paths(context_service_pb2.UpdateContextRequest(update_mask=mask("owner")), v) == ()
    assert v.items and [i.field for i in v.items] == ["expected_version", "update_mask.paths[0]"]
    v2 = Violations()
    assert CONTEXT.paths(context_service_pb2.UpdateContextRequest(), v2) == ()
    assert [i.field for i in v2.items] == ["update_mask"]


def test_explicit_immutable_and_excluded_fields() -> None:
    rules = UpdateMask.of(agent_service_pb2.UpdateAgentRequest, immutable=("type",), exclude=("config",))
    assert "config" not in rules.fields
    found = violations(rules, agent_service_pb2.UpdateAgentRequest(update_mask=mask("type", "config")))
    assert "cannot be changed" in found["update_mask.paths[0]"]
    assert "unknown field 'config'" in found["update_mask.paths[1]"]


def test_rules_refuse_another_request_type() -> None:
    with pytest.raises(TypeError):
        AGENT.paths(context_service_pb2.UpdateContextRequest(name="x"))


def test_copied_takes_the_masked_fields_as_plain_values() -> None:

    request = agent_service_pb2.UpdateAgentRequest(name="n", description="d", labels={"team": "a"},
                                                   capabilities=["x", "y"])
    copied = UpdateMask.copied(request, ("name", "labels", "capabilities"), "name", "description", "labels",
                               "capabilities")
    assert copied == {"name": "n", "labels": {"team": "a"}, "capabilities": ["x", "y"]}
    assert type(copied["labels"]) is dict and type(copied["capabilities"]) is list
    assert UpdateMask.copied(request, (), "name") == {}
