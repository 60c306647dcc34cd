"""Domain events to delivered notifications, through a real mesh (agent + notification, NATS, PostgreSQL, Envoy),
a local SMTP server (aiosmtpd) and a local HTTP receiver.

The headline test runs a real agent execution that fails; the retry, failure, resend and redelivery tests
publish their own agent events on NATS exactly as the outbox relay does, each with a subject only its
subscription matches, so they stay independent of each other and of the agent.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hashlib
import hmac
import json
import stat
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import nats
import psycopg
import pytest
from aiosmtpd.controller import Controller
from google.protobuf import message

from chassis.crypto import key_id
from chassis.events import subjects
from chassis.events.envelope import headers_for, new_envelope
from chassis.tooling.infra.ports import free_port
from chassis.tooling.mesh_testing import RestClient, eventually, mesh_channel, running_mesh
from chassis.tooling.supervisor import Mesh
from protomesh.agent.v1 import events_pb2
from protomesh.notification.v1 import notification_pb2
from protomesh.notification.v1 import notification_service_pb2 as pb
from protomesh.notification.v1.notification_service_pb2_grpc import NotificationServiceStub

SECRET = "s3cret-shared-with-the-receiver"  # pragma: allowlist secret - fake credential, test input
EXECUTION_FAILED = "protomesh.agent.v1.ExecutionFailed"


# --- receivers -------------------------------------------------------------------------------------------


class Mailbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for _, rcpts, m in self.messages if address in rcpts]


@dataclass(frozen=True)
class Received:
    """One request the HTTP receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int


HANG = 0
"""A scripted status that holds the request until `Receiver.release` is set (the sender times out or dies)."""


class Receiver:
    """HTTP server on loopback; each path answers a scripted list of statuses (the last one repeats)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.scripts: dict[str, list[int]] = {}
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    script = receiver.scripts.get(self.path, [200])
                    seen = sum(1 for r in receiver.requests if r.path == self.path)
                    status = script[min(seen, len(script) - 1)]
                    receiver.requests.append(Received(self.path, dict(self.headers), body, status))
                if status == HANG:
                    receiver.release.wait(30)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """A local SMTP server (aiosmtpd) on a free loopback port."""
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """A local HTTP receiver for webhooks."""
    found = Receiver()
    thread = threading.Thread(target=found.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.release.set()
        found.server.shutdown()
        found.server.server_close()


@pytest.fixture(scope="module")
def mesh(mailbox: tuple[Mailbox, int]) -> Iterator[Mesh]:
    """Agent and notification (two replicas each), sending mail to the local SMTP server, retrying quickly."""
    env = {"NOTIFICATION_SMTP_HOST": "127.0.0.1", "NOTIFICATION_SMTP_PORT": str(mailbox[1]),
           "NOTIFICATION_SMTP_FROM": "mesh@protomesh.test", "NOTIFICATION_MAX_ATTEMPTS": "4",
           "NOTIFICATION_RETRY_INITIAL_SECONDS": "0.3", "NOTIFICATION_SEND_TIMEOUT_SECONDS": "2",
           "NOTIFICATION_TASK_ACK_WAIT_SECONDS": "2", "NOTIFICATION_SWEEP_INTERVAL_SECONDS": "0.5"}
    with running_mesh(only=["agent", "notification"], extra_env=env) as started:
        yield started


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> RestClient:
    """JSON over HTTP through Envoy."""
    return RestClient.for_mesh(mesh)


@pytest.fixture(scope="module")
def organization(rest: RestClient) -> str:
    """The organization `rest` calls in (the bootstrap one): what its subscriptions are stamped with, so the
    events the tests publish by hand must carry it to reach them (docs/authorization.md, Tenancy)."""
    probe = subscribe(rest, f"org-probe-{uuid.uuid4().hex[:6]}", event_types=[EXECUTION_FAILED],
                      email={"to": ["nobody@example.com"]})
    assert rest.delete(f"/v1/subscriptions/{probe['subscription_id']}").status == 200
    assert probe["organization_id"]
    return str(probe["organization_id"])


# --- helpers ---------------------------------------------------------------------------------------------


def subscribe(rest: RestClient, name: str, **fields: Any) -> dict:
    reply = rest.post("/v1/subscriptions", {"name": name, **fields})
    assert reply.status == 200, reply.body
    return reply.body["subscription"]


def webhook(receiver: Receiver, path: str) -> dict:
    return {"url": receiver.url + path, "secret": SECRET}


def publish(mesh: Mesh, event: message.Message, subject: str, *, copies: int = 1) -> str:
    """Publish an event as the outbox relay would; extra copies get their own Nats-Msg-Id, so the server
    does not drop them and the consumer sees a redelivery of the same event id."""
    envelope = new_envelope(event, subject=subject, source="agent")

    async def send() -> None:
        nc = await nats.connect(mesh.nats_url)
        try:
            js = nc.jetstream()
            for copy in range(copies):
                await js.publish(subjects.event_subject(event), envelope.SerializeToString(),
                                 headers=headers_for(envelope, msg_id=f"{envelope.id}-{copy}"))
        finally:
            await nc.close()

    asyncio.run(send())
    return envelope.id


def failed_event(organization: str, error: str = "boom") -> tuple[events_pb2.ExecutionFailed, str]:
    """An ExecutionFailed of `organization` ("" for an event without one) and its subject."""
    execution_id = str(uuid.uuid4())
    event = events_pb2.ExecutionFailed(execution_id=execution_id, agent_id=str(uuid.uuid4()),
                                       agent_type="calculator", error=error, organization_id=organization)
    event.end_time.GetCurrentTime()
    return event, f"executions/{execution_id}"


def notifications(rest: RestClient, **filters: str) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    reply = rest.get(f"/v1/notifications?{query}")
    assert reply.status == 200, reply.body
    return reply.body["notifications"]


def settled(rest: RestClient, subscription_id: str, count: int = 1) -> list[dict]:
    """The subscription's notifications once `count` exist and each is DELIVERED or FAILED."""

    def check() -> list[dict] | None:
        found = notifications(rest, subscription_id=subscription_id)
        done = len(found) == count and all(n["state"] in ("NOTIFICATION_STATE_DELIVERED",
                                                          "NOTIFICATION_STATE_FAILED") for n in found)
        return found if done else None

    return eventually(check, timeout=20, interval=0.2, what=f"{count} settled notification(s) of {subscription_id}")


def verify_signature(request: Received) -> None:
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Protomesh-Signature"], expected), "bad HMAC signature"


# --- the check of the issue: a failed execution by email and by webhook ----------------------------------


def test_failed_execution_is_emailed_and_posted_signed(mesh: Mesh, rest: RestClient, mailbox: tuple[Mailbox, int],
                                                       receiver: Receiver) -> None:
    box, _ = mailbox
    mail = subscribe(rest, "ops-mail", event_types=[EXECUTION_FAILED], subject_filter="executions/*",
                     email={"to": ["ops@example.com", "oncall@example.com"],
                            "subject_template": "[{source}] {event}: {subject}"})
    hook = subscribe(rest, "ops-hook", event_types=["protomesh.agent.v1.*"], subject_filter="executions/*",
                     webhook=webhook(receiver, "/agent-events"))
    assert hook["webhook"]["url"] == receiver.url + "/agent-events" and hook["webhook"]["has_secret"] is True
    assert hook["webhook"].get("secret", "") == "", "the secret never leaves"

    agent = rest.post("/v1/agents", {"name": "notify-calc", "type": "calculator"})
    assert agent.status == 200, agent.body
    run = rest.post(f"/v1/agents/{agent.body['agent']['agent_id']}/execute",
                    {"input": {"expression": "1/0"}, "wait": True})
    assert run.status == 200, run.body
    execution = run.body["execution"]
    assert execution["state"] == "EXECUTION_STATE_FAILED", execution
    execution_id, error = execution["execution_id"], execution["error"]

    # Email: to both recipients, subject from the template, a body naming the execution and its error.
    (message_,) = eventually(lambda: box.to("ops@example.com"), timeout=20, what="the email")
    assert message_["To"] == "ops@example.com, oncall@example.com"
    assert message_["From"] == "mesh@protomesh.test"
    assert message_["Subject"] == f"[agent] ExecutionFailed: executions/{execution_id}"
    body = message_.get_content()
    assert EXECUTION_FAILED in body and execution_id in body and error in body
    assert "division by zero" in body
    assert box.to("oncall@example.com") == [message_]

    # Webhook: every execution event of that execution, the failure among them, each signed.
    def failure_posted() -> Received | None:
        for request in receiver.at("/agent-events"):
            document = json.loads(request.body)
            if document["type"] == EXECUTION_FAILED and document["data"]["execution_id"] == execution_id:
                return request
        return None

    posted = eventually(failure_posted, timeout=20, what="the ExecutionFailed webhook")
    verify_signature(posted)
    document = json.loads(posted.body)
    assert document["subject"] == f"executions/{execution_id}"
    assert document["data"]["error"] == error and document["data"]["agent_type"] == "calculator"
    assert posted.headers["X-Protomesh-Event-Id"] == document["id"]
    assert posted.headers["Content-Type"] == "application/json"
    assert int(posted.headers["X-Protomesh-Timestamp"]) > 0
    eventually(lambda: {json.loads(r.body)["type"] for r in receiver.at("/agent-events")} >= {
        "protomesh.agent.v1.ExecutionStarted", EXECUTION_FAILED}, what="the ExecutionStarted webhook too")
    assert not any(json.loads(r.body)["type"] == "protomesh.agent.v1.AgentRegistered"
                   for r in receiver.at("/agent-events")), "the subject filter keeps agents/* events out"

    # Both notifications are DELIVERED, after one attempt each, and say so through the API.
    (emailed,) = settled(rest, mail["subscription_id"])
    assert emailed["state"] == "NOTIFICATION_STATE_DELIVERED"
    assert emailed["event_subject"] == f"executions/{execution_id}" and emailed["event_source"] == "agent"
    assert emailed["event_data"]["error"] == error
    (attempt,) = emailed["attempts"]
    assert attempt["outcome"] == "ATTEMPT_OUTCOME_DELIVERED" and attempt["channel"] == "CHANNEL_TYPE_EMAIL"
    assert attempt["status_code"] == 250 and attempt["target"] == "ops@example.com, oncall@example.com"
    hooked = eventually(lambda: notifications(rest, subscription_id=hook["subscription_id"],
                                              event_type=EXECUTION_FAILED, state="NOTIFICATION_STATE_DELIVERED"),
                        what="the delivered webhook notification")
    assert hooked[0]["attempts"][0]["status_code"] == 200 and hooked[0]["event_id"] == document["id"]

    # Deleted subscriptions match no more events (the later tests' events would match these).
    for sub in (mail, hook):
        assert rest.delete(f"/v1/subscriptions/{sub['subscription_id']}").status == 200


# --- retries, failures, resend, redelivery ---------------------------------------------------------------


def test_a_receiver_failing_twice_gets_three_attempts(mesh: Mesh, rest: RestClient, organization: str,
                                                      receiver: Receiver) -> None:
    receiver.scripts["/flaky"] = [500, 503, 200]
    event, subject = failed_event(organization)
    sub = subscribe(rest, "flaky-hook", event_types=[EXECUTION_FAILED], subject_filter=subject,
                    webhook=webhook(receiver, "/flaky"))
    publish(mesh, event, subject)
    (notification,) = settled(rest, sub["subscription_id"])
    assert notification["state"] == "NOTIFICATION_STATE_DELIVERED"
    assert notification["attempt_count"] == 3 and notification["last_error"] == ""
    outcomes = [(a["delivery"], a["attempt"], a["outcome"], a["status_code"]) for a in notification["attempts"]]
    assert outcomes == [(1, 1, "ATTEMPT_OUTCOME_RETRYABLE_FAILURE", 500),
                        (1, 2, "ATTEMPT_OUTCOME_RETRYABLE_FAILURE", 503),
                        (1, 3, "ATTEMPT_OUTCOME_DELIVERED", 200)]
    assert notification["attempts"][0]["error"].startswith("HTTP 500")
    posts = receiver.at("/flaky")
    assert [p.status for p in posts] == [500, 503, 200]
    assert len({p.body for p in posts}) == 1, "every attempt sends the same signed body"
    for post in posts:
        verify_signature(post)
    assert [p.headers["X-Protomesh-Attempt"] for p in posts] == ["1.1", "1.2", "1.3"]


def test_a_receiver_that_always_fails_exhausts_the_attempts(mesh: Mesh, rest: RestClient, organization: str,
                                                            receiver: Receiver) -> None:
    receiver.scripts["/down"] = [502]
    event, subject = failed_event(organization)
    sub = subscribe(rest, "down-hook", event_types=[EXECUTION_FAILED], subject_filter=subject,
                    webhook=webhook(receiver, "/down"))
    publish(mesh, event, subject)
    (pending,) = eventually(lambda: notifications(rest, subscription_id=sub["subscription_id"]),
                            what="the notification")
    busy = rest.post(f"/v1/notifications/{pending['notification_id']}/resend")
    assert busy.status == 400 and "only DELIVERED or FAILED" in busy.body["message"], busy.body
    (notification,) = settled(rest, sub["subscription_id"])
    assert notification["state"] == "NOTIFICATION_STATE_FAILED"
    assert notification["attempt_count"] == 4 == notification["max_attempts"]
    assert notification["last_error"].startswith("gave up after 4 attempts: HTTP 502")
    assert len(receiver.at("/down")) == 4


def test_404_fails_at_once_and_resend_delivers_through_the_fixed_url(mesh: Mesh, rest: RestClient, organization: str,
                                                                     receiver: Receiver) -> None:
    receiver.scripts["/missing"] = [404]
    event, subject = failed_event(organization, "no such thing")
    sub = subscribe(rest, "missing-hook", event_types=[EXECUTION_FAILED], subject_filter=subject,
                    webhook=webhook(receiver, "/missing"))
    publish(mesh, event, subject)
    (notification,) = settled(rest, sub["subscription_id"])
    assert notification["state"] == "NOTIFICATION_STATE_FAILED"
    (attempt,) = notification["attempts"]
    assert (attempt["outcome"], attempt["status_code"]) == ("ATTEMPT_OUTCOME_PERMANENT_FAILURE", 404)
    assert notification["last_error"].startswith("HTTP 404")
    assert len(receiver.at("/missing")) == 1

    # Point the subscription at a working URL (the secret is kept) and resend: a second delivery.
    moved = rest.put(f"/v1/subscriptions/{sub['subscription_id']}", {"webhook": {"url": receiver.url + "/found"}})
    assert moved.status == 200, moved.body
    assert moved.body["subscription"]["webhook"]["has_secret"] is True
    nid = notification["notification_id"]
    resent = rest.post(f"/v1/notifications/{nid}/resend")
    assert resent.status == 200, resent.body
    assert resent.body["notification"]["state"] == "NOTIFICATION_STATE_PENDING"
    assert resent.body["notification"]["delivery_count"] == 2

    def redelivered() -> dict | None:
        current = rest.get(f"/v1/notifications/{nid}").body["notification"]
        return current if current["state"] == "NOTIFICATION_STATE_DELIVERED" else None

    done = eventually(redelivered, timeout=15, what="the resent notification delivered")
    assert [(a["delivery"], a["attempt"], a["outcome"]) for a in done["attempts"]] == [
        (1, 1, "ATTEMPT_OUTCOME_PERMANENT_FAILURE"), (2, 1, "ATTEMPT_OUTCOME_DELIVERED")]
    assert done["attempts"][1]["target"] == receiver.url + "/found"
    (post,) = receiver.at("/found")
    verify_signature(post)
    assert json.loads(post.body)["data"]["error"] == "no such thing"
    assert post.headers["X-Protomesh-Attempt"] == "2.1"

    # A DELIVERED notification can be resent again; an unknown one is 404.
    assert rest.post(f"/v1/notifications/{nid}/resend").status == 200
    eventually(lambda: len(receiver.at("/found")) == 2, timeout=15, what="the second resend")
    assert rest.post(f"/v1/notifications/{uuid.uuid4()}/resend").status == 404


def test_a_redelivered_event_makes_one_notification(mesh: Mesh, rest: RestClient, organization: str,
                                                    receiver: Receiver) -> None:
    event, subject = failed_event(organization)
    sub = subscribe(rest, "dedup-hook", event_types=[EXECUTION_FAILED], subject_filter=subject,
                    webhook=webhook(receiver, "/dedup"))
    event_id = publish(mesh, event, subject, copies=3)
    (notification,) = settled(rest, sub["subscription_id"])
    assert notification["event_id"] == event_id and notification["state"] == "NOTIFICATION_STATE_DELIVERED"
    assert len(receiver.at("/dedup")) == 1


def test_grpc_reads_and_resends_a_delivered_notification(mesh: Mesh, rest: RestClient, organization: str,
                                                         receiver: Receiver) -> None:
    event, subject = failed_event(organization)
    sub = subscribe(rest, "grpc-hook", event_types=[EXECUTION_FAILED], subject_filter=subject,
                    webhook=webhook(receiver, "/grpc"))
    publish(mesh, event, subject)
    (delivered,) = settled(rest, sub["subscription_id"])
    with mesh_channel(mesh) as channel:
        stub = NotificationServiceStub(channel)
        listed = stub.ListNotifications(pb.ListNotificationsRequest(
            subscription_id=sub["subscription_id"], event_subject=subject,
            state=notification_pb2.NOTIFICATION_STATE_DELIVERED), timeout=10)
        (found,) = listed.notifications
        assert found.notification_id == delivered["notification_id"] and found.event_data["agent_type"] == "calculator"
        got = stub.GetNotification(pb.GetNotificationRequest(notification_id=found.notification_id), timeout=10)
        assert got.notification.attempts[0].outcome == notification_pb2.ATTEMPT_OUTCOME_DELIVERED
        resent = stub.ResendNotification(pb.ResendNotificationRequest(notification_id=found.notification_id),
                                         timeout=10).notification
        assert resent.delivery_count == 2 and resent.state == notification_pb2.NOTIFICATION_STATE_PENDING
    posts = eventually(lambda: receiver.at("/grpc") if len(receiver.at("/grpc")) == 2 else None,
                       what="the resent webhook")
    assert posts[0].body == posts[1].body and posts[1].headers["X-Protomesh-Attempt"] == "2.1"


def test_subject_filters_and_disabled_subscriptions_match_nothing(mesh: Mesh, rest: RestClient, organization: str,
                                                                  receiver: Receiver) -> None:
    event, subject = failed_event(organization)
    other = subscribe(rest, "other-subject", event_types=[EXECUTION_FAILED], subject_filter=subject + "-other",
                      webhook=webhook(receiver, "/other"))
    off = subscribe(rest, "switched-off", event_types=[EXECUTION_FAILED], subject_filter=subject, enabled=False,
                    webhook=webhook(receiver, "/off"))
    assert off["enabled"] is False
    on = subscribe(rest, "switched-on", event_types=[EXECUTION_FAILED], subject_filter=subject,
                   webhook=webhook(receiver, "/on"))
    # The same event of another organization, and one without any (mesh-wide, or from before events carried
    # it): neither reaches this organization's subscription (docs/authorization.md, Tenancy).
    strays = [publish(mesh, failed_event(org)[0], subject) for org in (f"org-{uuid.uuid4().hex[:8]}", "")]
    event_id = publish(mesh, event, subject)
    (only,) = settled(rest, on["subscription_id"])
    assert only["event_id"] == event_id and only["organization_id"] == organization

    def handled() -> bool:
        with psycopg.connect(mesh.database_url) as conn:
            row = conn.execute("SELECT count(*) FROM notification.processed_events WHERE event_id = ANY(%s)",
                               ([event_id, *strays],)).fetchone()
        return bool(row) and row[0] == 3

    eventually(handled, timeout=10, what="every event handled by the consumer")
    assert [n["event_id"] for n in notifications(rest, subscription_id=on["subscription_id"])] == [event_id]
    assert notifications(rest, subscription_id=other["subscription_id"]) == []
    assert notifications(rest, subscription_id=off["subscription_id"]) == []
    assert receiver.at("/other") == [] and receiver.at("/off") == [] and len(receiver.at("/on")) == 1


def test_the_sweeper_queues_a_delivery_whose_task_was_lost(mesh: Mesh, rest: RestClient, receiver: Receiver) -> None:
    """A PENDING notification long overdue with no task (as after losing the task stream) is still delivered."""
    sub = subscribe(rest, "swept-hook", event_types=[EXECUTION_FAILED], subject_filter="executions/swept",
                    webhook=webhook(receiver, "/swept"))
    with psycopg.connect(mesh.database_url) as conn:
        conn.execute(
            "INSERT INTO notification.notifications (id, organization_id, subscription_id, subscription_name,"
            " event_id, event_type, event_subject, event_source, event_time, event_data, max_attempts,"
            " next_attempt_at) VALUES (%s, %s, %s, 'swept-hook', %s, %s, 'executions/swept', 'agent', now(),"
            " '{\"error\": \"lost\"}', 3, now() - interval '5 minutes')",
            (uuid.uuid4(), sub["organization_id"], sub["subscription_id"], str(uuid.uuid4()), EXECUTION_FAILED))
    (notification,) = settled(rest, sub["subscription_id"])
    assert notification["state"] == "NOTIFICATION_STATE_DELIVERED"
    (post,) = receiver.at("/swept")
    verify_signature(post)
    assert json.loads(post.body)["data"] == {"error": "lost"}


# --- webhook secrets at rest -----------------------------------------------------------------------------


def test_webhook_secrets_are_sealed_at_rest_and_still_sign(mesh: Mesh, rest: RestClient, organization: str,
                                                           receiver: Receiver) -> None:
    """No column of the subscriptions table holds a webhook secret in clear (nor as hex or base64): each is
    sealed with the replicas' shared key, and the replicas open it to sign; a changed secret signs the next post."""
    event, subject = failed_event(organization)
    sub = subscribe(rest, "sealed-hook", event_types=[EXECUTION_FAILED], subject_filter=subject,
                    webhook=webhook(receiver, "/sealed"))
    publish(mesh, event, subject)
    (notification,) = settled(rest, sub["subscription_id"])
    assert notification["state"] == "NOTIFICATION_STATE_DELIVERED"
    (post,) = receiver.at("/sealed")
    verify_signature(post)

    rotated = "rotated-webhook-secret-0123"
    changed = rest.put(f"/v1/subscriptions/{sub['subscription_id']}",
                       {"webhook": {"url": receiver.url + "/sealed", "secret": rotated}})
    assert changed.status == 200 and changed.body["subscription"]["webhook"]["has_secret"] is True, changed.body
    assert rest.post(f"/v1/notifications/{notification['notification_id']}/resend").status == 200
    _, again = eventually(lambda: receiver.at("/sealed") if len(receiver.at("/sealed")) == 2 else None,
                          timeout=15, what="the resent webhook")
    expected = "sha256=" + hmac.new(rotated.encode(), again.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(again.headers["X-Protomesh-Signature"], expected), "signed with the new secret"

    key_file = mesh.state_dir / "notification" / "encryption.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600, "no key configured: the replicas share a generated one"
    key = key_file.read_text().strip()
    with psycopg.connect(mesh.database_url) as conn:
        columns = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'notification' AND table_name = 'subscriptions'").fetchall()}
        rows = [r[0] for r in conn.execute("SELECT t::text FROM notification.subscriptions t").fetchall()]
        counts = conn.execute(
            "SELECT count(*) FILTER (WHERE channel = 'WEBHOOK'),"
            " count(*) FILTER (WHERE webhook_secret_ciphertext IS NOT NULL AND length(webhook_secret_nonce) = 12"
            "                  AND webhook_secret_key_id = %s)"
            " FROM notification.subscriptions", (key_id(base64.b64decode(key)),)).fetchone()
    assert "webhook_secret" not in columns, "no plain-text column is left"
    assert {"webhook_secret_ciphertext", "webhook_secret_nonce", "webhook_secret_key_id"} <= columns
    assert counts is not None and counts[0] >= 5 and counts[0] == counts[1], "every webhook secret is sealed"
    table = "\n".join(rows)
    log_text = "\n".join(p.read_bytes().decode(errors="replace") for p in mesh.log_dir.rglob("*") if p.is_file())
    for secret in (SECRET, rotated):
        for form in (secret, secret.encode().hex(), base64.b64encode(secret.encode()).decode()):
            assert form not in table, f"the table holds {secret[:4]}... in clear"
            assert form not in log_text, f"a log holds {secret[:4]}..."
    assert key not in log_text


# --- last: it leaves one notification replica ------------------------------------------------------------


def test_a_replica_killed_mid_attempt_leaves_the_delivery_to_another(mesh: Mesh, rest: RestClient, organization: str,
                                                                    receiver: Receiver) -> None:
    """The attempt in flight is ABANDONED once its lease runs out; another replica's worker makes the next."""
    receiver.scripts["/slow"] = [HANG, 200]
    event, subject = failed_event(organization)
    sub = subscribe(rest, "slow-hook", event_types=[EXECUTION_FAILED], subject_filter=subject,
                    webhook=webhook(receiver, "/slow"))
    publish(mesh, event, subject)
    eventually(lambda: receiver.at("/slow"), timeout=10, what="the first attempt to arrive")

    def sender() -> str | None:
        with psycopg.connect(mesh.database_url) as conn:
            row = conn.execute("SELECT a.worker FROM notification.delivery_attempts a"
                               " JOIN notification.notifications n ON n.id = a.notification_id"
                               " WHERE n.subscription_id = %s AND a.outcome = 'IN_PROGRESS'",
                               (sub["subscription_id"],)).fetchone()
        return row[0] if row else None

    worker = eventually(sender, timeout=2, interval=0.05, what="the attempt recorded as in progress")
    victim = next(r for r in mesh.replicas["notification"] if r.instance_id == worker)
    victim.kill()

    (notification,) = settled(rest, sub["subscription_id"])
    assert notification["state"] == "NOTIFICATION_STATE_DELIVERED"
    assert [(a["attempt"], a["outcome"]) for a in notification["attempts"]] == [
        (1, "ATTEMPT_OUTCOME_ABANDONED"), (2, "ATTEMPT_OUTCOME_DELIVERED")]
    assert "stopped before recording its outcome" in notification["attempts"][0]["error"]
    first, second = receiver.at("/slow")
    assert first.body == second.body, "the same signed notification, once more"
