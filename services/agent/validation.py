"""Request validation for the agent service: every bad field is named in one INVALID_ARGUMENT."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from chassis.errors import Violations
from services.agent.agent_types import AGENT_TYPES

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,127}$")
CAPABILITY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.:\-]{0,63}$")
MAX_DESCRIPTION = 2000
MAX_CAPABILITIES = 32
MAX_LABELS = 32
MAX_CONFIG_BYTES = 64 * 1024


def check_name(v: Violations, name: str, field: str = "name") -> None:
    """A required, 1-128 character name of letters, digits, spaces, '-', '_' and '.'."""
    if v.check(name.strip() != "", field, "required"):
        v.check(bool(NAME_PATTERN.match(name)), field,
                "1-128 characters: letters, digits, spaces, '-', '_' or '.', starting with a letter or digit")


def check_type(v: Violations, type_: str) -> None:
    """A known built-in agent type."""
    if v.check(type_ != "", "type", f"required: one of {', '.join(sorted(AGENT_TYPES))}"):
        v.check(type_ in AGENT_TYPES, "type", f"unknown type {type_!r}; one of {', '.join(sorted(AGENT_TYPES))}")


def check_capabilities(v: Violations, capabilities: Iterable[str], field: str = "capabilities") -> None:
    """Lower-case capability names, at most MAX_CAPABILITIES."""
    items = list(capabilities)
    v.check(len(items) <= MAX_CAPABILITIES, field, f"at most {MAX_CAPABILITIES} capabilities")
    for i, capability in enumerate(items):
        v.check(bool(CAPABILITY_PATTERN.match(capability)), f"{field}[{i}]",
                "1-64 characters: lower-case letters, digits, '_', '.', ':' or '-'")


def check_common(v: Violations, *, description: str, labels: dict[str, str], config: dict[str, Any]) -> None:
    """Limits on description, labels and config size."""
    v.check(len(description) <= MAX_DESCRIPTION, "description", f"at most {MAX_DESCRIPTION} characters")
    v.check(len(labels) <= MAX_LABELS, "labels", f"at most {MAX_LABELS} labels")
    for key, value in labels.items():
        v.check(0 < len(key) <= 63, f"labels[{key!r}]", "label keys are 1-63 characters")
        v.check(len(value) <= 256, f"labels[{key!r}]", "label values are at most 256 characters")
    v.check(len(json.dumps(config)) <= MAX_CONFIG_BYTES, "config", f"at most {MAX_CONFIG_BYTES} bytes as JSON")


def check_input(v: Violations, agent_type: str, data: dict[str, Any]) -> None:
    """The agent type's own input rules."""
    AGENT_TYPES[agent_type].validate(data, v)
