"""The field-report agent type's input rules and its sums (the gathering is tested through the mesh in
tests/e2e/test_field.py, where a field service answers)."""

from __future__ import annotations

import pytest

from chassis.errors import FailedPrecondition, Violations
from services.agent import field_report
from services.agent.agent_types import AGENT_TYPES, RunContext


def _field(ha: float, workable: float, crops: list[str], harvested: int = 0) -> dict[str, object]:
    seasons = [{"crop": c, **({"actual_harvest_date": "2027-07-30"} if i < harvested else {})}
               for i, c in enumerate(crops)]
    return {"field": {"measures": {"area": {"hectares": ha}, "workable_area": {"hectares": workable}}},
            "seasons": seasons}


def test_the_report_sums_areas_seasons_and_crops_of_the_latest_season() -> None:
    gathered = {"total": 5, "fields": [_field(10, 9, ["wheat", "maize"], harvested=1), _field(2.5, 2.5, []),
                                       _field(4, 3, ["wheat"])]}
    out = AGENT_TYPES["field-report"].run({field_report.GATHERED: gathered}, RunContext())
    assert out == {"field_count": 5, "fields_reported": 3, "total_hectares": 16.5, "workable_hectares": 14.5,
                   "season_count": 3, "harvested_season_count": 1,
                   "crop_hectares": {"none": 2.5, "wheat": 14.0}}


def test_input_rules() -> None:
    v = Violations()
    field_report.validate({"max_fields": 0}, v)
    field_report.validate({field_report.GATHERED: {}}, v)
    assert [x.field for x in v.items] == ["input.max_fields", f"input.{field_report.GATHERED}"]


async def test_without_a_field_service_the_execution_is_told_why() -> None:
    with pytest.raises(FailedPrecondition, match="field service"):
        await field_report.gather(None, {})
