"""The field service as other services call it: the runtime's discovery-aware client with typed calls.

`await FieldClient.connect(replica)` wraps `replica.client("field", FieldServiceStub)`: replicas found through
the registry and balanced, mTLS, the caller's claims forwarded (so the field service scopes every answer to
the caller's organization), and the call policy FieldService declares in its contract (5 s deadline, retries
of idempotent reads on UNAVAILABLE with backoff, a breaker after 5 failures, 128 calls in flight) — the same
policy Envoy's routes get, so the two never disagree. Nothing here restates a policy.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from chassis import Replica
from protomesh.field.v1 import field_pb2
from protomesh.field.v1 import field_service_pb2 as pb
from protomesh.field.v1.field_service_pb2_grpc import FieldServiceStub

PAGE = 1000
"""Page size of the listing calls (the contract's maximum)."""
SEASON_CALLS = 8
"""ListSeasons calls in flight at once while gathering many fields' seasons."""


@dataclass(frozen=True)
class FieldWithSeasons:
    """An active field and its seasons."""

    field: field_pb2.Field
    seasons: list[field_pb2.Season]


class FieldClient:
    """Typed calls to the field service on the caller's (or acting_for's) behalf."""

    def __init__(self, stub: FieldServiceStub) -> None:
        self.stub = stub

    @classmethod
    async def connect(cls, replica: Replica) -> FieldClient:
        """The client of a replica that calls the field service (in its lifespan)."""
        return cls(await replica.client("field", FieldServiceStub))

    async def active_fields(self, limit: int) -> tuple[list[field_pb2.Field], int]:
        """Up to `limit` active fields of the caller's organization, by name, and how many it has in all."""
        fields: list[field_pb2.Field] = []
        token, total = "", 0
        while len(fields) < limit:
            reply = await self.stub.ListFields(pb.ListFieldsRequest(
                status=field_pb2.FIELD_STATUS_ACTIVE, page_size=min(PAGE, limit - len(fields)), page_token=token))
            fields.extend(reply.fields)
            total, token = reply.page_info.total_size, reply.page_info.next_page_token
            if not token:
                break
        return fields, total

    async def seasons(self, field_id: str, limit: int = PAGE) -> list[field_pb2.Season]:
        """Up to `limit` seasons of a field, newest first."""
        reply = await self.stub.ListSeasons(pb.ListSeasonsRequest(field_id=field_id, page_size=min(limit, PAGE)))
        return list(reply.seasons)

    async def fields_with_seasons(self, limit: int) -> tuple[list[FieldWithSeasons], int]:
        """Up to `limit` active fields with their seasons, and the organization's active field count. The
        seasons are asked for SEASON_CALLS fields at a time (well under the contract's 128 calls in flight)."""
        fields, total = await self.active_fields(limit)
        gate = asyncio.Semaphore(SEASON_CALLS)

        async def with_seasons(field: field_pb2.Field) -> FieldWithSeasons:
            async with gate:
                return FieldWithSeasons(field, await self.seasons(field.field_id))

        return list(await asyncio.gather(*(with_seasons(f) for f in fields))), total
