"""The field service's own settings (FIELD_*), read by chassis.load_settings."""

from __future__ import annotations

from dataclasses import dataclass

from chassis import setting


@dataclass(frozen=True)
class FieldSettings:
    """Each field is read from FIELD_<FIELD>; a bad value names its variable."""

    max_boundary_positions: int = setting(50_000, low=4, high=500_000)
    """Most positions one boundary may have (FIELD_MAX_BOUNDARY_POSITIONS); a larger one is refused by name."""
