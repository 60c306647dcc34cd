"""Every NotificationService operation through Envoy, as REST/JSON and as native gRPC, with its error cases.

Delivery itself (SMTP, webhooks, retries, resend of real notifications) is in test_notification_delivery.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from chassis.tooling.mesh_testing import RestClient, mesh_channel, running_mesh
from chassis.tooling.supervisor import Mesh
from protomesh.common.v1 import service_info_pb2
from protomesh.notification.v1 import notification_pb2
from protomesh.notification.v1 import notification_service_pb2 as pb
from protomesh.notification.v1.notification_service_pb2_grpc import NotificationServiceStub
from tests.support.errors import bad_fields, failure, violations

T = 10  # seconds per gRPC call
FAILED = "protomesh.agent.v1.ExecutionFailed"
SECRET = "0123456789abcdef-secret"  # pragma: allowlist secret - fake credential, test input


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    """PostgreSQL, NATS, two notification replicas and Envoy."""
    with running_mesh(only=["notification"]) as started:
        yield started


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> RestClient:
    """JSON over HTTP through Envoy."""
    return RestClient.for_mesh(mesh)


@pytest.fixture(scope="module")
def stub(mesh: Mesh) -> Iterator[NotificationServiceStub]:
    """A gRPC stub for NotificationService through Envoy."""
    with mesh_channel(mesh) as channel:
        yield NotificationServiceStub(channel)


def create(rest: RestClient, name: str, **fields: Any) -> dict:
    body = {"name": name, "event_types": [FAILED], "email": {"to": ["ops@example.com"]}, **fields}
    reply = rest.post("/v1/subscriptions", body)
    assert reply.status == 200, reply.body
    return reply.body["subscription"]


# --- REST: subscriptions ---------------------------------------------------------------------------------


def test_rest_subscription_round_trip(rest: RestClient) -> None:
    created = create(rest, "rest-mail", event_types=[FAILED, "protomesh.agent.v1.*", FAILED],
                     subject_filter="executions/*",
                     email={"to": ["ops@example.com", "dev@example.com"], "subject_template": "{event} {data.error}"})
    assert uuid.UUID(created["subscription_id"])
    assert created["event_types"] == [FAILED, "protomesh.agent.v1.*"], "duplicates dropped, order kept"
    assert created["email"] == {"to": ["ops@example.com", "dev@example.com"],
                                "subject_template": "{event} {data.error}"}
    assert created["enabled"] is True and created["create_time"]

    fetched = rest.get(f"/v1/subscriptions/{created['subscription_id']}")
    assert fetched.status == 200 and fetched.body["subscription"] == created

    renamed = rest.put(f"/v1/subscriptions/{created['subscription_id']}", {"name": "rest-mail-2", "enabled": False})
    assert renamed.status == 200, renamed.body
    sub = renamed.body["subscription"]
    assert (sub["name"], sub["enabled"], sub["subject_filter"]) == ("rest-mail-2", False, "executions/*")

    masked = rest.put(f"/v1/subscriptions/{created['subscription_id']}",
                      {"update_mask": "subject_filter,enabled", "enabled": True})
    assert masked.status == 200, masked.body
    assert masked.body["subscription"]["subject_filter"] == "" and masked.body["subscription"]["enabled"] is True

    # Email -> webhook: the secret is required then, and never returned.
    no_secret = rest.put(f"/v1/subscriptions/{created['subscription_id']}",
                         {"webhook": {"url": "https://hooks.example.com/x"}})
    assert "webhook.secret" in violations(no_secret)
    hooked = rest.put(f"/v1/subscriptions/{created['subscription_id']}",
                      {"webhook": {"url": "https://hooks.example.com/x", "secret": SECRET}})
    assert hooked.status == 200, hooked.body
    assert hooked.body["subscription"]["webhook"]["has_secret"] is True
    assert hooked.body["subscription"]["webhook"].get("secret", "") == ""
    assert "email" not in hooked.body["subscription"]
    # Webhook -> webhook without a secret keeps the secret.
    moved = rest.put(f"/v1/subscriptions/{created['subscription_id']}", {"webhook": {"url": "http://127.0.0.1:9/y"}})
    assert moved.status == 200, moved.body
    assert moved.body["subscription"]["webhook"]["url"] == "http://127.0.0.1:9/y"
    assert moved.body["subscription"]["webhook"]["has_secret"] is True

    deleted = rest.delete(f"/v1/subscriptions/{created['subscription_id']}")
    assert deleted.status == 200 and deleted.body["subscription_id"] == created["subscription_id"]
    assert rest.get(f"/v1/subscriptions/{created['subscription_id']}").status == 404
    assert rest.delete(f"/v1/subscriptions/{created['subscription_id']}").status == 404


def test_rest_list_pages_and_filters_by_channel(rest: RestClient) -> None:
    made = [create(rest, f"page-{i}")["subscription_id"] for i in range(3)]
    reply = rest.post("/v1/subscriptions", {"name": "page-hook", "event_types": [FAILED],
                                            "webhook": {"url": "http://127.0.0.1:9/", "secret": SECRET}})
    assert reply.status == 200, reply.body
    hook = reply.body["subscription"]
    seen: list[str] = []
    token = ""
    for _ in range(20):
        reply = rest.get(f"/v1/subscriptions?page_size=2&page_token={token}")
        assert reply.status == 200, reply.body
        assert len(reply.body["subscriptions"]) <= 2
        seen += [s["subscription_id"] for s in reply.body["subscriptions"]]
        token = reply.body["page_info"]["next_page_token"]
        if not token:
            break
    assert {*made, hook["subscription_id"]} <= set(seen) and len(seen) == len(set(seen))
    hooks = rest.get("/v1/subscriptions?channel=CHANNEL_TYPE_WEBHOOK").body
    assert hook["subscription_id"] in [s["subscription_id"] for s in hooks["subscriptions"]]
    assert all("webhook" in s for s in hooks["subscriptions"])
    assert "page_token" in violations(rest.get("/v1/subscriptions?page_token=garbage"))
    assert "page_size" in violations(rest.get("/v1/subscriptions?page_size=5000"))


def test_rest_names_are_unique(rest: RestClient) -> None:
    create(rest, "Unique-Name")
    reply = rest.post("/v1/subscriptions", {"name": "unique-name", "event_types": [FAILED],
                                            "email": {"to": ["a@example.com"]}})
    assert reply.status == 409, reply.body


@pytest.mark.parametrize(("body", "fields"), [
    ({"event_types": [FAILED], "email": {"to": ["a@example.com"]}}, {"name"}),
    ({"name": "x", "email": {"to": ["a@example.com"]}}, {"event_types"}),
    ({"name": "x", "event_types": [FAILED, "protomesh.agent.v1.NoSuchEvent"], "email": {"to": ["a@example.com"]}},
     {"event_types[1]"}),
    ({"name": "x", "event_types": ["protomesh.agent.v1.Agent"], "email": {"to": ["a@example.com"]}},
     {"event_types[0]"}),
    ({"name": "x", "event_types": ["protomesh.nothing.v1.*"], "email": {"to": ["a@example.com"]}},
     {"event_types[0]"}),
    ({"name": "x", "event_types": ["protomesh.agent.v1.Exec*"], "email": {"to": ["a@example.com"]}},
     {"event_types[0]"}),
    ({"name": "x", "event_types": [FAILED]}, {"channel"}),
    ({"name": "x", "event_types": [FAILED], "email": {"to": []}}, {"email.to"}),
    ({"name": "x", "event_types": [FAILED], "email": {"to": ["ok@example.com", "not an address"]}}, {"email.to[1]"}),
    ({"name": "x", "event_types": [FAILED], "email": {"to": ["a@example.com"], "subject_template": "{nope}"}},
     {"email.subject_template"}),
    ({"name": "x", "event_types": [FAILED], "webhook": {"url": "ftp://example.com/", "secret": SECRET}},
     {"webhook.url"}),
    ({"name": "x", "event_types": [FAILED], "webhook": {"url": "https://example.com/"}}, {"webhook.secret"}),
    # pragma: allowlist nextline secret - fake credential, test input
    ({"name": "x", "event_types": [FAILED], "webhook": {"url": "https://example.com/", "secret": "short"}},
     {"webhook.secret"}),
    ({"name": "x", "event_types": [FAILED], "subject_filter": "a" * 300, "email": {"to": ["a@example.com"]}},
     {"subject_filter"}),
    ({"name": "", "event_types": ["bogus"], "webhook": {"url": "", "secret": ""}},
     {"name", "event_types[0]", "webhook.url", "webhook.secret"}),
], ids=["no-name", "no-event-types", "unknown-type", "not-an-event", "wildcard-matching-nothing", "mid-wildcard",
        "no-channel", "no-recipients", "bad-address", "bad-template", "bad-url", "no-secret", "short-secret",
        "long-filter", "everything-at-once"])
def test_rest_create_rejects_bad_fields(rest: RestClient, body: dict, fields: set[str]) -> None:
    found = violations(rest.post("/v1/subscriptions", body))
    assert set(found) == fields, found


def test_rest_update_rejects_bad_fields_and_unknown_ids(rest: RestClient) -> None:
    sub = create(rest, "update-errors")
    path = f"/v1/subscriptions/{sub['subscription_id']}"
    assert "update_mask.paths[0]" in violations(rest.put(path, {"update_mask": "colour"}))
    assert "update_mask" in violations(rest.put(path, {}))
    assert "event_types[0]" in violations(rest.put(path, {"event_types": ["protomesh.agent.v1.Nope"]}))
    assert "name" in violations(rest.put(path, {"name": "!!"}))
    assert rest.put(f"/v1/subscriptions/{uuid.uuid4()}", {"name": "x"}).status == 404
    assert rest.put("/v1/subscriptions/not-a-uuid", {"name": "x"}).status == 400
    assert "subscription_id" in rest.get("/v1/subscriptions/not-a-uuid").field_violations()


# --- REST: notifications, info and health ---------------------------------------------------------------


def test_rest_notifications_unknown_and_bad_filters(rest: RestClient) -> None:
    listed = rest.get(f"/v1/notifications?subscription_id={uuid.uuid4()}&state=NOTIFICATION_STATE_FAILED"
                      f"&event_type={FAILED}&event_subject=executions/x")
    assert listed.status == 200 and listed.body["notifications"] == []
    assert listed.body["page_info"]["total_size"] == 0
    assert "subscription_id" in violations(rest.get("/v1/notifications?subscription_id=nope"))
    assert "page_token" in violations(rest.get("/v1/notifications?page_token=nope"))
    assert rest.get(f"/v1/notifications/{uuid.uuid4()}").status == 404
    assert "notification_id" in rest.get("/v1/notifications/not-a-uuid").field_violations()
    assert rest.post(f"/v1/notifications/{uuid.uuid4()}/resend").status == 404


def test_rest_info_and_health(rest: RestClient) -> None:
    info = rest.get("/v1/notifications/info")
    assert info.status == 200
    assert info.body["info"]["name"] == "notification"
    assert FAILED in info.body["event_types"] and info.body["max_attempts"] == 5
    health = rest.get("/v1/notifications/health")
    assert health.status == 200
    assert {d["name"] for d in health.body["health"]["dependencies"]} == {"postgres", "nats", "registry"}
    assert rest.get("/v1/notifications/health/ready").status == 200
    assert rest.get("/v1/notifications/health/live").body["state"] == "HEALTH_STATE_SERVING"


# --- gRPC --------------------------------------------------------------------------------------------------


def test_grpc_subscription_round_trip(stub: NotificationServiceStub) -> None:
    created = stub.CreateSubscription(pb.CreateSubscriptionRequest(
        name="grpc-hook", event_types=["protomesh.agent.v1.*"], subject_filter="agents/*",
        webhook=notification_pb2.WebhookChannel(url="https://hooks.example.com/in", secret=SECRET),
    ), timeout=T).subscription
    assert created.WhichOneof("channel") == "webhook"
    assert created.webhook.has_secret and created.webhook.secret == ""
    sid = created.subscription_id
    assert stub.GetSubscription(pb.GetSubscriptionRequest(subscription_id=sid), timeout=T).subscription == created
    listed = stub.ListSubscriptions(pb.ListSubscriptionsRequest(channel=notification_pb2.CHANNEL_TYPE_WEBHOOK),
                                    timeout=T)
    assert sid in [s.subscription_id for s in listed.subscriptions]

    updated = stub.UpdateSubscription(pb.UpdateSubscriptionRequest(
        subscription_id=sid, enabled=False, subject_filter="", update_mask=field_mask_pb2.FieldMask(
            paths=["enabled", "subject_filter", "channel"]),
        email=notification_pb2.EmailChannel(to=["ops@example.com"]),
    ), timeout=T).subscription
    assert not updated.enabled and updated.subject_filter == "" and list(updated.email.to) == ["ops@example.com"]

    assert stub.DeleteSubscription(pb.DeleteSubscriptionRequest(subscription_id=sid),
                                   timeout=T).subscription_id == sid
    for call, request in ((stub.GetSubscription, pb.GetSubscriptionRequest(subscription_id=sid)),
                          (stub.DeleteSubscription, pb.DeleteSubscriptionRequest(subscription_id=sid)),
                          (stub.UpdateSubscription, pb.UpdateSubscriptionRequest(subscription_id=sid, name="x"))):
        assert failure(call, request).code() == grpc.StatusCode.NOT_FOUND


def test_grpc_errors_name_fields_and_conflicts(stub: NotificationServiceStub) -> None:
    error = failure(stub.CreateSubscription, pb.CreateSubscriptionRequest(
        name="grpc-bad", event_types=["protomesh.agent.v1.Nope"],
        email=notification_pb2.EmailChannel(to=["x"], subject_template="{")))
    assert bad_fields(error) == {"event_types[0]", "email.to[0]", "email.subject_template"}
    request = pb.CreateSubscriptionRequest(name="grpc-dup", event_types=[FAILED],
                                           email=notification_pb2.EmailChannel(to=["a@example.com"]))
    stub.CreateSubscription(request, timeout=T)
    assert failure(stub.CreateSubscription, request).code() == grpc.StatusCode.ALREADY_EXISTS
    assert bad_fields(failure(stub.ListNotifications, pb.ListNotificationsRequest(subscription_id="nope"))) == {
        "subscription_id"}


def test_grpc_notifications_unknown(stub: NotificationServiceStub) -> None:
    listed = stub.ListNotifications(pb.ListNotificationsRequest(state=notification_pb2.NOTIFICATION_STATE_FAILED),
                                    timeout=T)
    assert list(listed.notifications) == [] and listed.page_info.total_size == 0
    missing = str(uuid.uuid4())
    assert failure(stub.GetNotification, pb.GetNotificationRequest(notification_id=missing)).code() == (
        grpc.StatusCode.NOT_FOUND)
    assert failure(stub.ResendNotification, pb.ResendNotificationRequest(notification_id=missing)).code() == (
        grpc.StatusCode.NOT_FOUND)


def test_grpc_info_and_health(stub: NotificationServiceStub) -> None:
    info = stub.GetInfo(pb.GetInfoRequest(), timeout=T)
    assert info.info.name == "notification" and FAILED in info.event_types and info.subscription_count >= 1
    assert stub.GetHealth(pb.GetHealthRequest(), timeout=T).health.state == service_info_pb2.HEALTH_STATE_SERVING
    assert stub.GetReadiness(pb.GetReadinessRequest(), timeout=T).health.service == "notification"
    assert stub.GetLiveness(pb.GetLivenessRequest(), timeout=T).state == service_info_pb2.HEALTH_STATE_SERVING
