"""DSL durations: an ISO 8601 duration (`PT1H30M`, `P1D`) or an object of days/hours/minutes/seconds/milliseconds."""

from __future__ import annotations

import re
from typing import Any

_ISO = re.compile(r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?"
                  r"(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$")
_UNITS = {"days": 86400.0, "hours": 3600.0, "minutes": 60.0, "seconds": 1.0, "milliseconds": 0.001}


def seconds_of(value: Any) -> float:
    """The duration in seconds; ValueError saying what is accepted."""
    if isinstance(value, str):
        match = _ISO.match(value.strip())
        if not match or value.strip() in ("P", "PT"):
            raise ValueError(f"{value!r} is not an ISO 8601 duration such as PT30S, PT1H or P1D")
        return sum(float(v) * _UNITS[k] for k, v in match.groupdict().items() if v)
    if isinstance(value, dict) and value:
        unknown = set(value) - set(_UNITS)
        if unknown:
            raise ValueError(f"unknown duration unit {sorted(unknown)[0]!r}; use {', '.join(_UNITS)}")
        total = 0.0
        for unit, amount in value.items():
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
                raise ValueError(f"{unit} must be a non-negative number")
            total += float(amount) * _UNITS[unit]
        return total
    raise ValueError("a duration is an ISO 8601 string (PT30S) or an object such as {seconds: 30}")
