"""Conversions between stored rows and the contracts' messages (secrets never leave here)."""

from __future__ import annotations

from chassis.protos import timestamp, to_struct
from protomesh.notification.v1 import notification_pb2 as pb
from services.notification.rows import AttemptRow, NotificationRow, SubscriptionRow

STATES = {
    "PENDING": pb.NOTIFICATION_STATE_PENDING,
    "DELIVERING": pb.NOTIFICATION_STATE_DELIVERING,
    "RETRYING": pb.NOTIFICATION_STATE_RETRYING,
    "DELIVERED": pb.NOTIFICATION_STATE_DELIVERED,
    "FAILED": pb.NOTIFICATION_STATE_FAILED,
}
STATE_NAMES = {number: name for name, number in STATES.items()}
CHANNELS = {"EMAIL": pb.CHANNEL_TYPE_EMAIL, "WEBHOOK": pb.CHANNEL_TYPE_WEBHOOK}
CHANNEL_NAMES = {number: name for name, number in CHANNELS.items()}
OUTCOMES = {
    "IN_PROGRESS": pb.ATTEMPT_OUTCOME_IN_PROGRESS,
    "DELIVERED": pb.ATTEMPT_OUTCOME_DELIVERED,
    "RETRYABLE_FAILURE": pb.ATTEMPT_OUTCOME_RETRYABLE_FAILURE,
    "PERMANENT_FAILURE": pb.ATTEMPT_OUTCOME_PERMANENT_FAILURE,
    "ABANDONED": pb.ATTEMPT_OUTCOME_ABANDONED,
}


def subscription_message(row: SubscriptionRow) -> pb.Subscription:
    """The contracts' Subscription; a webhook's secret is reported only as has_secret."""
    message = pb.Subscription(
        subscription_id=str(row.id), name=row.name, event_types=row.event_types, subject_filter=row.subject_filter,
        enabled=row.enabled, create_time=timestamp(row.created_at), update_time=timestamp(row.updated_at),
        organization_id=row.organization_id,
    )
    if row.channel == "WEBHOOK":
        message.webhook.CopyFrom(pb.WebhookChannel(url=row.webhook_url, has_secret=row.sealed_secret is not None))
    else:
        message.email.CopyFrom(pb.EmailChannel(to=row.email_to, subject_template=row.subject_template))
    return message


def attempt_message(row: AttemptRow) -> pb.DeliveryAttempt:
    """The contracts' DeliveryAttempt."""
    return pb.DeliveryAttempt(
        delivery=row.delivery, attempt=row.attempt, outcome=OUTCOMES[row.outcome],
        channel=CHANNELS.get(row.channel, pb.CHANNEL_TYPE_UNSPECIFIED), target=row.target,
        status_code=row.status_code, error=row.error, start_time=timestamp(row.started_at),
        end_time=timestamp(row.finished_at),
    )


def notification_message(row: NotificationRow) -> pb.Notification:
    """The contracts' Notification, with its attempts."""
    return pb.Notification(
        notification_id=str(row.id), subscription_id=str(row.subscription_id),
        subscription_name=row.subscription_name, state=STATES[row.state], event_id=row.event_id,
        event_type=row.event_type, event_subject=row.event_subject, event_source=row.event_source,
        event_time=timestamp(row.event_time), event_data=to_struct(row.event_data), delivery_count=row.delivery,
        attempt_count=row.attempt_count, max_attempts=row.max_attempts, last_error=row.last_error,
        next_attempt_time=timestamp(row.next_attempt_at) if row.state == "RETRYING" else None,
        create_time=timestamp(row.created_at), update_time=timestamp(row.updated_at),
        deliver_time=timestamp(row.delivered_at), attempts=[attempt_message(a) for a in row.attempts],
        organization_id=row.organization_id,
    )
