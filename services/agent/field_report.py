"""The `field-report` agent type: summarises the organization's fields (area, crops, seasons).

Its data comes from the field service through services.field.client.FieldClient (the runtime's
discovery-aware, resilient client; the policy is FieldService's contract). The runner gathers it before the
work thread starts (`gather`, async, in the execution's organization: the executions act for it, as members,
who hold fields.read), and `run` only adds it up, so it stays a plain function like the other types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.protobuf import json_format

from chassis.errors import FailedPrecondition, Violations
from services.field.client import FieldClient

if TYPE_CHECKING:
    from services.agent.agent_types import RunContext

NAME = "field-report"
DEFAULT_MAX_FIELDS = 200
MAX_FIELDS = 1000
GATHERED = "_fields"
"""The key under which the runner hands the gathered fields to `run` (not an input a caller gives)."""


def validate(data: dict[str, Any], v: Violations) -> None:
    """max_fields, if given: a whole number from 1 to MAX_FIELDS."""
    value = data.get("max_fields", DEFAULT_MAX_FIELDS)
    whole = isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
    v.check(whole and 1 <= value <= MAX_FIELDS, "input.max_fields", f"a whole number from 1 to {MAX_FIELDS}")
    v.check(GATHERED not in data, f"input.{GATHERED}", "is set by the service; leave it out")


async def gather(client: FieldClient | None, data: dict[str, Any]) -> dict[str, Any]:
    """The input with the organization's fields and their seasons (plain JSON) under GATHERED."""
    if client is None:
        raise FailedPrecondition("this agent replica has no registry to find the field service; field-report "
                                 "runs in the mesh")
    found, total = await client.fields_with_seasons(int(data.get("max_fields", DEFAULT_MAX_FIELDS)))
    fields = [{"field": json_format.MessageToDict(f.field, preserving_proto_field_name=True),
               "seasons": [json_format.MessageToDict(s, preserving_proto_field_name=True) for s in f.seasons]}
              for f in found]
    return {**data, GATHERED: {"total": total, "fields": fields}}


def run(data: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Totals of the gathered fields: areas in hectares, seasons, hectares per crop of the latest season."""
    gathered = data[GATHERED]
    total_ha = workable_ha = 0.0
    seasons = harvested = 0
    crops: dict[str, float] = {}
    for item in gathered["fields"]:
        measures = item["field"].get("measures", {})
        area = float(measures.get("area", {}).get("hectares", 0.0))
        total_ha += area
        workable_ha += float(measures.get("workable_area", {}).get("hectares", 0.0))
        seasons += len(item["seasons"])
        harvested += sum(1 for s in item["seasons"] if s.get("actual_harvest_date"))
        latest = item["seasons"][0]["crop"] if item["seasons"] else "none"  # newest first
        crops[latest] = crops.get(latest, 0.0) + area
    ctx.report(1.0)  # a stop asked meanwhile is honoured here
    return {"field_count": int(gathered["total"]), "fields_reported": len(gathered["fields"]),
            "total_hectares": round(total_ha, 4), "workable_hectares": round(workable_ha, 4),
            "season_count": seasons, "harvested_season_count": harvested,
            "crop_hectares": {crop: round(ha, 4) for crop, ha in sorted(crops.items())}}
