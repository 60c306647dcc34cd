"""What the notification contract cannot check itself: the event-type catalog and rules that depend on the
stored subscription.

Every other rule (names, lengths, formats, ranges, required fields) is declared in
proto/protomesh/notification/v1 and checked by the chassis before a servicer runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from chassis.errors import Violations
from chassis.validation import violations as contract_violations
from protomesh.notification.v1 import notification_service_pb2
from services.notification.matching import domain_event_types, pattern_problem
from services.notification.rows import SubscriptionRow


def check_event_types(v: Violations, patterns: Sequence[str]) -> None:
    """Each pattern must match a domain event of the contracts (the catalog is every events.proto, read at
    run time, so a proto rule could not list it). Needs no database: the chassis also runs it on requests
    the contract refuses."""
    known = domain_event_types()
    for i, pattern in enumerate(patterns):
        problem = pattern_problem(pattern, known)
        if problem:
            v.add(f"event_types[{i}]", problem)


def unique(patterns: Sequence[str]) -> list[str]:
    """The patterns without repeats, in the caller's order (repeats are dropped, not refused)."""
    return list(dict.fromkeys(patterns))


def check_new_channel(v: Violations, request: notification_service_pb2.UpdateSubscriptionRequest,
                      current: SubscriptionRow) -> None:
    """An update's channel, which update_mask (or its being set) says to replace.

    The contract exempts the update's webhook from WebhookChannel's rules, since an empty secret keeps
    the current one only when there is one; the same rules are applied here, knowing that.
    """
    kind = request.WhichOneof("channel")
    if kind is None:  # masked but unset: a oneof cannot be named by a message rule of the contract
        v.add("channel", "required: update_mask names it; set email {to, subject_template} or webhook {url, secret}")
    elif kind == "webhook":
        keeps_secret = current.channel == "WEBHOOK" and current.sealed_secret is not None
        for found in contract_violations(request.webhook):
            if not (found.field == "secret" and keeps_secret and not request.webhook.secret):
                v.add(f"webhook.{found.field}", found.description)
