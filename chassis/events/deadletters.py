"""The dead-letter stream: how messages get there, and the tooling to list, show, replay and purge them.

A dead letter is a `protomesh.events.v1.DeadLetter` message on `deadletter.<consumer>.<original
subject>` in stream DEAD_LETTERS; its stream sequence number is its id in the tooling. Replay
publishes the original bytes to the original subject with Nats-Msg-Id `replay-<id>-<event id>`:
replaying the same dead letter twice inside the duplicate window is dropped by the server, and
after it the consumers' processed_events skips what was already handled. A replayed dead letter
is deleted once the server has acknowledged the republished message.
"""

from __future__ import annotations

import builtins
import logging
from dataclasses import dataclass

import nats.js.errors
from google.protobuf import timestamp_pb2
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from chassis.events import subjects
from chassis.events.envelope import MSG_ID_HEADER
from chassis.events.streams import Streams
from protomesh.events.v1 import envelope_pb2

logger = logging.getLogger(__name__)

HEADER_CONSUMER = "Protomesh-Consumer"
HEADER_REASON = "Protomesh-Reason"
HEADER_ERROR = "Protomesh-Error"
HEADER_DELIVERIES = "Protomesh-Delivery-Count"
HEADER_ORIGINAL_SUBJECT = "Protomesh-Original-Subject"
_MAX_ERROR = 4000


def _header_value(text: str, limit: int = 500) -> str:
    """NATS header values are one line."""
    return " ".join(text.split())[:limit]


async def dead_letter(
    js: JetStreamContext,
    msg: Msg,
    *,
    consumer: str,
    reason: int,
    error: str,
    envelope: envelope_pb2.Envelope | None = None,
    timeout: float = 5.0,
) -> None:
    """Move a delivered message to DEAD_LETTERS with why, by whom and after how many deliveries, then TERM it.

    The dead letter's Nats-Msg-Id is derived from the consumer and the original stream position,
    so a crash between publishing it and TERM (which redelivers the message) adds no second copy.
    Raises if the dead letter could not be stored; the caller then NAKs, and nothing is lost.
    """
    meta = msg.metadata
    headers = dict(msg.headers or {})
    event_id = envelope.id if envelope else headers.get(MSG_ID_HEADER, "")
    record = envelope_pb2.DeadLetter(
        reason=reason,  # type: ignore[arg-type]
        error=error[:_MAX_ERROR],
        consumer=consumer,
        delivery_count=meta.num_delivered,
        original_subject=msg.subject,
        original_stream=meta.stream,
        original_sequence=meta.sequence.stream,
        data=msg.data,
        headers=headers,
        event_id=event_id,
        event_type=envelope.type if envelope else headers.get("ce-type", ""),
    )
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    record.dead_letter_time.CopyFrom(now)
    await js.publish(
        subjects.dead_letter_subject(consumer, msg.subject),
        record.SerializeToString(),
        timeout=timeout,
        headers={
            MSG_ID_HEADER: f"dl-{consumer}-{meta.stream}-{meta.sequence.stream}",
            HEADER_CONSUMER: consumer,
            HEADER_REASON: envelope_pb2.DeadLetterReason.Name(reason),
            HEADER_ERROR: _header_value(error),
            HEADER_DELIVERIES: str(meta.num_delivered),
            HEADER_ORIGINAL_SUBJECT: msg.subject,
        },
    )
    await msg.term()
    logger.warning(
        "dead-lettered",
        extra={"consumer": consumer, "subject": msg.subject, "event_id": event_id, "deliveries": meta.num_delivered,
               "reason": envelope_pb2.DeadLetterReason.Name(reason), "error": error[:500]},
    )


@dataclass(frozen=True)
class StoredDeadLetter:
    """A dead letter as the tooling shows it: its id (stream sequence) and the record."""

    id: int
    record: envelope_pb2.DeadLetter

    def summary(self) -> dict[str, object]:
        """One line's worth of it, for listings."""
        r = self.record
        return {
            "id": self.id,
            "consumer": r.consumer,
            "reason": envelope_pb2.DeadLetterReason.Name(r.reason),
            "deliveries": r.delivery_count,
            "subject": r.original_subject,
            "event_id": r.event_id,
            "event_type": r.event_type,
            "error": r.error[:200],
            "time": r.dead_letter_time.ToJsonString() if r.HasField("dead_letter_time") else "",
        }


class DeadLetters:
    """List, show, replay and purge what is in DEAD_LETTERS."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self._streams = Streams(js)

    async def list(self, consumer: str | None = None, *, limit: int = 10_000) -> list[StoredDeadLetter]:
        """Stored dead letters (optionally of one consumer), oldest first, at most `limit`."""
        await self._streams.ensure_dead_letters()
        filter_subject = (
            f"{subjects.DEAD_LETTER_PREFIX}.{subjects.check_name(consumer, 'consumer')}.>" if consumer
            else f"{subjects.DEAD_LETTER_PREFIX}.>"
        )
        found: list[StoredDeadLetter] = []
        seq = 1
        while len(found) < limit:
            try:
                raw = await self._js.get_msg(subjects.DEAD_LETTER_STREAM, seq=seq, subject=filter_subject, next=True)
            except nats.js.errors.NotFoundError:
                break
            assert raw.seq is not None  # noqa: S101 narrows a type for mypy, not a check of input: under -O only the error raised would differ
            found.append(StoredDeadLetter(raw.seq, envelope_pb2.DeadLetter.FromString(raw.data or b"")))
            seq = raw.seq + 1
        return found

    async def show(self, dead_letter_id: int) -> StoredDeadLetter:
        """One dead letter by id; KeyError if there is none."""
        await self._streams.ensure_dead_letters()
        try:
            raw = await self._js.get_msg(subjects.DEAD_LETTER_STREAM, seq=dead_letter_id)
        except nats.js.errors.NotFoundError:
            raise KeyError(f"no dead letter {dead_letter_id}") from None
        return StoredDeadLetter(dead_letter_id, envelope_pb2.DeadLetter.FromString(raw.data or b""))

    async def replay(self, dead_letter_id: int, *, keep: bool = False) -> StoredDeadLetter:
        """Publish the original message to its original subject again, then delete the dead letter.

        The original headers travel along (trace context, CloudEvents attributes); only
        Nats-Msg-Id changes, see the module docstring. `keep=True` leaves the dead letter stored.
        """
        stored = await self.show(dead_letter_id)
        record = stored.record
        headers = {k: v for k, v in record.headers.items() if not k.startswith("Nats-")}
        headers[MSG_ID_HEADER] = f"replay-{dead_letter_id}-{record.event_id or record.original_sequence}"
        await self._js.publish(record.original_subject, record.data, headers=headers, timeout=5.0)
        if not keep:
            await self.delete(dead_letter_id)
        logger.info("replayed dead letter", extra={"id": dead_letter_id, "subject": record.original_subject,
                                                    "event_id": record.event_id})
        return stored

    async def replay_all(
        self, consumer: str | None = None, *, keep: bool = False
    ) -> builtins.list[StoredDeadLetter]:  # builtins: `list` here is the method above
        """Replay every stored dead letter (optionally of one consumer), oldest first."""
        return [await self.replay(stored.id, keep=keep) for stored in await self.list(consumer)]

    async def delete(self, dead_letter_id: int) -> None:
        """Remove one dead letter; KeyError if there is none."""
        try:
            await self._js.delete_msg(subjects.DEAD_LETTER_STREAM, dead_letter_id)
        except nats.js.errors.NotFoundError:
            raise KeyError(f"no dead letter {dead_letter_id}") from None

    async def purge(self, consumer: str | None = None) -> int:
        """Delete every dead letter (optionally of one consumer); return how many there were."""
        await self._streams.ensure_dead_letters()
        before = (await self._js.stream_info(subjects.DEAD_LETTER_STREAM)).state.messages
        if consumer:
            await self._js.purge_stream(
                subjects.DEAD_LETTER_STREAM,
                subject=f"{subjects.DEAD_LETTER_PREFIX}.{subjects.check_name(consumer, 'consumer')}.>",
            )
        else:
            await self._js.purge_stream(subjects.DEAD_LETTER_STREAM)
        after = (await self._js.stream_info(subjects.DEAD_LETTER_STREAM)).state.messages
        return before - after
