"""Request validation for the notification service: every bad field is named in one INVALID_ARGUMENT."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence

from chassis.errors import Violations
from protomesh.notification.v1 import notification_pb2
from services.notification.matching import pattern_problem, template_problem

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,127}$")
# The WHATWG "valid email address": what a browser's type=email field accepts.
EMAIL_PATTERN = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
MAX_EVENT_TYPES = 50
MAX_SUBJECT_FILTER = 256
MAX_RECIPIENTS = 20
MAX_SUBJECT_TEMPLATE = 200
MAX_URL = 2048
MIN_SECRET, MAX_SECRET = 16, 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_name(v: Violations, name: str) -> None:
    """A required, 1-128 character name of letters, digits, spaces, '-', '_' and '.'."""
    if v.check(name.strip() != "", "name", "required"):
        v.check(bool(NAME_PATTERN.match(name)), "name",
                "1-128 characters: letters, digits, spaces, '-', '_' or '.', starting with a letter or digit")


def check_event_types(v: Violations, patterns: Sequence[str]) -> list[str]:
    """1-50 event type patterns known to the contracts; returns them without duplicates."""
    items = list(patterns)
    if not v.check(items != [], "event_types",
                   "required: full event type names (protomesh.agent.v1.ExecutionFailed) or wildcards "
                   "(protomesh.agent.v1.*)"):
        return []
    v.check(len(items) <= MAX_EVENT_TYPES, "event_types", f"at most {MAX_EVENT_TYPES} event types")
    for i, pattern in enumerate(items):
        problem = pattern_problem(pattern)
        if problem:
            v.add(f"event_types[{i}]", problem)
    return list(dict.fromkeys(items))


def check_subject_filter(v: Violations, subject_filter: str) -> None:
    """A glob of at most 256 printable characters."""
    v.check(len(subject_filter) <= MAX_SUBJECT_FILTER, "subject_filter", f"at most {MAX_SUBJECT_FILTER} characters")
    v.check(not _CONTROL.search(subject_filter), "subject_filter", "control characters are not allowed")


def check_email(v: Violations, email: notification_pb2.EmailChannel) -> None:
    """1-20 valid recipients and a renderable subject template."""
    if v.check(len(email.to) > 0, "email.to", "required: 1-20 email addresses"):
        v.check(len(email.to) <= MAX_RECIPIENTS, "email.to", f"at most {MAX_RECIPIENTS} recipients")
    for i, address in enumerate(email.to):
        v.check(bool(EMAIL_PATTERN.match(address)), f"email.to[{i}]", f"{address!r} is not an email address")
    template = email.subject_template
    if v.check(len(template) <= MAX_SUBJECT_TEMPLATE, "email.subject_template",
               f"at most {MAX_SUBJECT_TEMPLATE} characters"):
        problem = template_problem(template) or ("control characters are not allowed"
                                                  if _CONTROL.search(template) else None)
        if problem:
            v.add("email.subject_template", problem)


def check_webhook(v: Violations, webhook: notification_pb2.WebhookChannel, *, secret_required: bool) -> None:
    """An http(s) URL with a host, and a 16-256 character secret (optional on update: kept)."""
    url = webhook.url.strip()
    if v.check(url != "", "webhook.url", "required: an http:// or https:// URL"):
        parsed = urllib.parse.urlsplit(url)
        try:
            port_ok = parsed.port is None or parsed.port > 0
        except ValueError:
            port_ok = False
        v.check(len(url) <= MAX_URL and parsed.scheme in ("http", "https") and bool(parsed.hostname) and port_ok
                and not _CONTROL.search(url), "webhook.url",
                f"an http:// or https:// URL with a host, at most {MAX_URL} characters")
    if webhook.secret or secret_required:
        v.check(MIN_SECRET <= len(webhook.secret) <= MAX_SECRET, "webhook.secret",
                f"required: {MIN_SECRET}-{MAX_SECRET} characters, used to sign each body with HMAC-SHA256")
