"""A time-compressed copy of the alert rules, so a live test sees in seconds what production sees in minutes.

Every duration in a rule is divided by one factor: its `for:` and each range or subquery window in its
expression (`[5m]`, `[15m:1m]`). Thresholds, labels and the expressions' shape are untouched, so the copy
fires for the same reasons as the original, only sooner. Dividing `for:` alone would not do: a rule that
compares values across a 15-minute window would still need 15 minutes of data.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
            "y": 31_536_000_000}
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_DURATION = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")
_WINDOW = re.compile(r"\[((?:\d+(?:ms|s|m|h|d|w|y))+)(?::((?:\d+(?:ms|s|m|h|d|w|y))+))?\]")


def duration_ms(text: str) -> int:
    """A Prometheus duration (`90s`, `1h30m`) in milliseconds."""
    if not _DURATION.match(text):
        raise ValueError(f"{text!r} is not a Prometheus duration")
    return sum(int(number) * _UNIT_MS[unit] for number, unit in _PART.findall(text))


def scaled(text: str, factor: float) -> str:
    """The duration divided by factor, in whole milliseconds (at least 1 ms)."""
    return f"{max(1, round(duration_ms(text) / factor))}ms"


def scaled_expression(expression: str, factor: float) -> str:
    """The expression with every range and subquery window divided by factor."""
    def window(match: re.Match[str]) -> str:
        step = f":{scaled(match[2], factor)}" if match[2] else ""
        return f"[{scaled(match[1], factor)}{step}]"
    return _WINDOW.sub(window, expression)


def compressed_rules(document: dict[str, Any], factor: float) -> dict[str, Any]:
    """A copy of a rule file's document with every rule's durations divided by factor."""
    result = copy.deepcopy(document)
    for group in result["groups"]:
        for rule in group["rules"]:
            rule["expr"] = scaled_expression(str(rule["expr"]), factor)
            if "for" in rule:
                rule["for"] = scaled(str(rule["for"]), factor)
    return result


def write_compressed_rules(source: Path, target: Path, factor: float) -> dict[str, Any]:
    """Write the compressed copy of the rule file `source` to `target`; return it."""
    document = compressed_rules(yaml.safe_load(source.read_text()), factor)
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return document
