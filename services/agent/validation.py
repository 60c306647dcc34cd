"""Request validation for the agent service: every bad field is named in one INVALID_ARGUMENT."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from chassis.errors import FieldViolation, InvalidArgument, Violations
from services.agent.agent_types import AGENT_TYPES

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,127}$")
CAPABILITY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.:\-]{0,63}$")
MAX_DESCRIPTION = 2000
MAX_CAPABILITIES = 32
MAX_LABELS = 32
MAX_CONFIG_BYTES = 64 * 1024
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


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


def page_size(value: int, field: str = "page_size") -> int:
    """0 means the default; negative or too large is an error."""
    if value < 0 or value > MAX_PAGE_SIZE:
        raise InvalidArgument([FieldViolation(field, f"must be between 0 and {MAX_PAGE_SIZE}")])
    return value or DEFAULT_PAGE_SIZE


def _fingerprint(filters: Any) -> str:
    return hashlib.sha256(repr(filters).encode()).hexdigest()[:12]


def encode_page_token(created_at: datetime, agent_id: uuid.UUID, filters: Any) -> str:
    """An opaque cursor bound to the filters it was issued for."""
    raw = json.dumps({"t": created_at.isoformat(), "i": str(agent_id), "f": _fingerprint(filters)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str, filters: Any) -> tuple[datetime, uuid.UUID] | None:
    """The cursor in a token; INVALID_ARGUMENT if it is malformed or the filters changed."""
    if not token:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor = datetime.fromisoformat(raw["t"]), uuid.UUID(raw["i"])
        matches = raw["f"] == _fingerprint(filters)
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidArgument([FieldViolation("page_token", "not a token issued by this API")]) from None
    if not matches:
        raise InvalidArgument([FieldViolation("page_token", "issued for different filters; start again without it")])
    return cursor
