"""The two channels: email over SMTP and HMAC-signed webhooks, each attempt ending in an Outcome."""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import hmac
import json
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, Any

from services.notification.matching import DEFAULT_SUBJECT_TEMPLATE, render_template
from services.notification.settings import NotificationSettings

if TYPE_CHECKING:
    import aiohttp

DELIVERED = "DELIVERED"
RETRYABLE = "RETRYABLE_FAILURE"
PERMANENT = "PERMANENT_FAILURE"

SIGNATURE_HEADER = "X-Protomesh-Signature"
EVENT_ID_HEADER = "X-Protomesh-Event-Id"
TIMESTAMP_HEADER = "X-Protomesh-Timestamp"
NOTIFICATION_ID_HEADER = "X-Protomesh-Notification-Id"
ATTEMPT_HEADER = "X-Protomesh-Attempt"
_ERROR_BODY_CHARS = 200
_RETRYABLE_4XX = frozenset({408, 429})
# RFC 5322's hard limit instead of the 78-character soft one: the standard library folds a long subject
# before its first word, which readers then see as a leading space.
_EMAIL_POLICY = email.policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended: DELIVERED, RETRYABLE_FAILURE or PERMANENT_FAILURE, with the reply code."""

    outcome: str
    status_code: int = 0
    error: str = ""


@dataclass(frozen=True)
class EventView:
    """What a notification says: the event, and which notification, delivery and attempt carries it."""

    notification_id: str
    event_id: str
    type: str
    subject: str
    source: str
    time: datetime
    data: dict[str, Any]
    subscription: str
    delivery: int = 1
    attempt: int = 1

    @property
    def time_text(self) -> str:
        """The event time in RFC 3339, UTC."""
        return self.time.astimezone(UTC).isoformat().replace("+00:00", "Z")

    def placeholders(self) -> dict[str, str]:
        """Values of the subject template's placeholders."""
        return {"type": self.type, "event": self.type.rpartition(".")[2], "subject": self.subject,
                "id": self.event_id, "time": self.time_text, "source": self.source,
                "subscription": self.subscription}


# --- webhooks ------------------------------------------------------------------------------------


def webhook_body(event: EventView) -> bytes:
    """The exact bytes POSTed (and signed): {id, type, subject, time, data} as compact JSON."""
    document = {"id": event.event_id, "type": event.type, "subject": event.subject, "time": event.time_text,
                "data": event.data}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, body: bytes) -> str:
    """X-Protomesh-Signature: "sha256=" + hex HMAC-SHA256 of the body under the secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def classify_http(status: int) -> str:
    """2xx delivered; 408, 429 and 5xx worth retrying; anything else (4xx, redirects) permanent."""
    if 200 <= status < 300:
        return DELIVERED
    if status >= 500 or status in _RETRYABLE_4XX:
        return RETRYABLE
    return PERMANENT


class WebhookSender:
    """POSTs signed notifications with one shared aiohttp session, opened by the first webhook.

    aiohttp (~8 MB RSS) is loaded then, not at start: a replica that delivers no webhook never needs
    it. The lifespan calls `close`.
    """

    def __init__(self, timeout: float, user_agent: str) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._timeout_seconds = timeout
        self._user_agent = user_agent

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout_seconds))
        return self._session

    async def close(self) -> None:
        """Close the session if a webhook opened it."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, url: str, secret: str, event: EventView) -> Outcome:
        """One attempt; never raises for the receiver's faults, which are the Outcome."""
        body = webhook_body(event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self._user_agent,
            SIGNATURE_HEADER: signature(secret, body),
            EVENT_ID_HEADER: event.event_id,
            TIMESTAMP_HEADER: str(int(time.time())),
            NOTIFICATION_ID_HEADER: event.notification_id,
            ATTEMPT_HEADER: f"{event.delivery}.{event.attempt}",
        }
        session = self._open()
        import aiohttp  # loaded by _open; bound here for the exceptions below

        try:
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                status = response.status
                text = "" if 200 <= status < 300 else (await response.text(errors="replace"))[:_ERROR_BODY_CHARS]
        except TimeoutError:
            return Outcome(RETRYABLE, error=f"no answer within {self._timeout_seconds:g}s")
        except aiohttp.InvalidURL as exc:
            return Outcome(PERMANENT, error=f"invalid URL: {exc}")
        except (aiohttp.ClientError, OSError) as exc:
            return Outcome(RETRYABLE, error=f"{type(exc).__name__}: {exc}")
        outcome = classify_http(status)
        if outcome == DELIVERED:
            return Outcome(DELIVERED, status)
        reason = "redirects are not followed" if 300 <= status < 400 else text.strip()
        return Outcome(outcome, status, f"HTTP {status}" + (f": {reason}" if reason else ""))


# --- email ---------------------------------------------------------------------------------------


def email_body(event: EventView) -> str:
    """The plain-text body: what happened, to what, when, and the event's fields as JSON."""
    return "\n".join([
        f"A {event.type.rpartition('.')[2]} event matched the subscription {event.subscription!r}.",
        "",
        f"Event type:   {event.type}",
        f"Subject:      {event.subject or '-'}",
        f"Time:         {event.time_text}",
        f"Source:       {event.source or '-'}",
        f"Event id:     {event.event_id}",
        f"Notification: {event.notification_id} (delivery {event.delivery}, attempt {event.attempt})",
        "",
        "Event data:",
        json.dumps(event.data, indent=2, sort_keys=True, ensure_ascii=False),
        "",
    ])


def email_message(event: EventView, *, sender: str, to: list[str], subject_template: str) -> EmailMessage:
    """The email of a notification; the subject comes from the subscription's template."""
    subject = render_template(subject_template or DEFAULT_SUBJECT_TEMPLATE, event.placeholders(), event.data)
    message = EmailMessage(policy=_EMAIL_POLICY)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = " ".join(subject.split())  # no line breaks: they would end the header
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring=f"{event.notification_id}.{event.delivery}.{event.attempt}")
    message[EVENT_ID_HEADER] = event.event_id
    message[NOTIFICATION_ID_HEADER] = event.notification_id
    message.set_content(email_body(event))
    return message


def classify_smtp(code: int) -> str:
    """SMTP reply codes: 4xx is a temporary failure worth retrying, 5xx is permanent."""
    return RETRYABLE if 400 <= code < 500 else PERMANENT


class EmailSender:
    """Sends through the configured SMTP relay with the standard library, in a worker thread."""

    def __init__(self, settings: NotificationSettings) -> None:
        self._settings = settings

    async def send(self, to: list[str], subject_template: str, event: EventView) -> Outcome:
        """One attempt; never raises for the relay's faults, which are the Outcome."""
        message = email_message(event, sender=self._settings.smtp_from, to=to, subject_template=subject_template)
        return await asyncio.to_thread(self._send, message, to)

    def _send(self, message: EmailMessage, to: list[str]) -> Outcome:
        s = self._settings
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.send_timeout_seconds) as smtp:
                if s.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.smtp_username:
                    smtp.login(s.smtp_username, s.smtp_password)
                refused = smtp.send_message(message, from_addr=s.smtp_from, to_addrs=to)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            worst = RETRYABLE if any(400 <= c < 500 for c in codes) else PERMANENT
            detail = "; ".join(f"{rcpt}: {code} {text.decode(errors='replace')}"
                               for rcpt, (code, text) in exc.recipients.items())
            return Outcome(worst, max(codes, default=0), f"every recipient refused: {detail}")
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            return Outcome(classify_smtp(exc.smtp_code), exc.smtp_code, f"SMTP {exc.smtp_code}: {text}")
        except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timed out, disconnected
            return Outcome(RETRYABLE, error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        if refused:
            detail = "; ".join(f"{rcpt}: {code}" for rcpt, (code, _) in refused.items())
            return Outcome(DELIVERED, 250, f"some recipients refused: {detail}")
        return Outcome(DELIVERED, 250)
