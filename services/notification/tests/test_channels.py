"""Webhook bodies and signatures, HTTP and SMTP outcome rules, the email's content."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from services.notification.channels import (
    DELIVERED,
    PERMANENT,
    RETRYABLE,
    EventView,
    classify_http,
    classify_smtp,
    email_message,
    signature,
    webhook_body,
)

EVENT = EventView(notification_id="n-1", event_id="e-1", type="protomesh.agent.v1.ExecutionFailed",
                  subject="executions/x-1", source="agent", time=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
                  data={"execution_id": "x-1", "error": "division by zero"}, subscription="ops")


def test_webhook_body_is_the_documented_document() -> None:
    assert json.loads(webhook_body(EVENT)) == {
        "id": "e-1", "type": "protomesh.agent.v1.ExecutionFailed", "subject": "executions/x-1",
        "time": "2025-01-02T03:04:05Z", "data": {"execution_id": "x-1", "error": "division by zero"}}


def test_signature_is_hmac_sha256_of_the_exact_body() -> None:
    body = webhook_body(EVENT)
    expected = hmac.new(b"0123456789abcdef", body, hashlib.sha256).hexdigest()
    assert signature("0123456789abcdef", body) == f"sha256={expected}"
    assert signature("another-secret-value", body) != signature("0123456789abcdef", body)


@pytest.mark.parametrize(("status", "outcome"), [
    (200, DELIVERED), (202, DELIVERED), (204, DELIVERED),
    (500, RETRYABLE), (502, RETRYABLE), (503, RETRYABLE), (408, RETRYABLE), (429, RETRYABLE),
    (400, PERMANENT), (401, PERMANENT), (404, PERMANENT), (410, PERMANENT), (301, PERMANENT),
])
def test_http_outcomes(status: int, outcome: str) -> None:
    assert classify_http(status) == outcome


def test_smtp_outcomes() -> None:
    assert classify_smtp(421) == RETRYABLE and classify_smtp(451) == RETRYABLE
    assert classify_smtp(550) == PERMANENT and classify_smtp(554) == PERMANENT


def test_email_names_the_event_and_carries_its_fields() -> None:
    message = email_message(EVENT, sender="mesh@example.com", to=["a@example.com", "b@example.com"],
                            subject_template="{event}\r\nBcc: evil@example.com {data.error}")
    assert message["To"] == "a@example.com, b@example.com"
    assert message["Subject"] == "ExecutionFailed Bcc: evil@example.com division by zero", "no header injection"
    body = message.get_content()
    for text in ("protomesh.agent.v1.ExecutionFailed", "executions/x-1", "2025-01-02T03:04:05Z",
                 '"error": "division by zero"', '"execution_id": "x-1"'):
        assert text in body
    default = email_message(EVENT, sender="mesh@example.com", to=["a@example.com"], subject_template="")
    assert default["Subject"] == "[protomesh] ExecutionFailed executions/x-1"
