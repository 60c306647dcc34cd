"""services.field.client, the typed calls other services make, over a real channel to the in-process service
(the discovery, breaker and retry parts are chassis.client's, tested with the runtime)."""

from __future__ import annotations

from typing import Any

from chassis.testing import InProcess
from protomesh.field.v1 import field_service_pb2 as pb
from services.field.client import FieldClient
from services.field.tests.shapes import rect
from services.field.tests.support import new_org


async def test_active_fields_page_through_and_bring_their_seasons(field: InProcess[Any]) -> None:
    org = await new_org(field)
    made = [await org.field(f"F{i}", rect(14.0 + 0.003 * i, 52.0, 0.002, 0.002)) for i in range(3)]
    await org.stub.CreateSeason(pb.CreateSeasonRequest(field_id=made[1].field_id, crop="maize"))
    await org.stub.ArchiveField(pb.ArchiveFieldRequest(field_id=made[2].field_id))
    client = FieldClient(org.stub)
    found, total = await client.fields_with_seasons(limit=10)
    assert total == 2 and [f.field.name for f in found] == ["F0", "F1"]
    assert [s.crop for s in found[1].seasons] == ["maize"] and not found[0].seasons
    first, total = await client.active_fields(limit=1)
    assert [f.name for f in first] == ["F0"] and total == 2
