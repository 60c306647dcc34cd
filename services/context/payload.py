"""Layer data and metadata: checked and cleaned into plain JSON, with every bad key named by its path."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2

from chassis.errors import Violations

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
# C0 and C1 control characters (and DEL): invisible, they make keys that look equal differ.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Doubles hold integers exactly up to 2**53; beyond that a number stays a float.
_MAX_EXACT_INT = 2**53
# Past this many violations the rest are not listed: the caller has enough to fix.
MAX_REPORTED = 20


@dataclass(frozen=True)
class Limits:
    """Shape and size limits of one JSON object."""

    max_bytes: int
    """Largest size as compact JSON (UTF-8)."""
    max_depth: int = 32
    """Deepest nesting of objects and lists; the top-level object is depth 1."""
    max_key_length: int = 256
    """Longest key, in characters."""


def child_path(parent: str, key: str) -> str:
    """The field path of `key` under `parent`: data.a.b, or data["odd key"] for keys that need quoting."""
    return f"{parent}.{key}" if _PLAIN_KEY.match(key) else f"{parent}[{json.dumps(key)}]"


def json_size(data: Any) -> int:
    """Size in bytes of the compact JSON encoding, the unit every size limit uses."""
    return len(json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode())


class _Walker:
    def __init__(self, limits: Limits, violations: Violations) -> None:
        self.limits = limits
        self.v = violations
        self.reported = 0

    def bad(self, path: str, description: str) -> None:
        self.reported += 1
        if self.reported <= MAX_REPORTED:
            self.v.add(path, description)

    def struct(self, struct: struct_pb2.Struct, path: str, depth: int) -> dict[str, Any]:
        if depth > self.limits.max_depth:
            self.bad(path, f"nested deeper than {self.limits.max_depth} levels")
            return {}
        clean: dict[str, Any] = {}
        for key in sorted(struct.fields):
            key_path = child_path(path, key)
            if not key:
                self.bad(key_path, "keys must not be empty")
            elif len(key) > self.limits.max_key_length:
                self.bad(key_path, f"key is {len(key)} characters long; at most {self.limits.max_key_length}")
            elif match := _CONTROL.search(key):
                self.bad(key_path, f"key contains the control character U+{ord(match.group()):04X}")
            clean[key] = self.value(struct.fields[key], key_path, depth)
        return clean

    def value(self, value: struct_pb2.Value, path: str, depth: int) -> Any:
        kind = value.WhichOneof("kind")
        if kind == "struct_value":
            return self.struct(value.struct_value, path, depth + 1)
        if kind == "list_value":
            if depth + 1 > self.limits.max_depth:
                self.bad(path, f"nested deeper than {self.limits.max_depth} levels")
                return []
            return [self.value(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value.list_value.values)]
        if kind == "number_value":
            number = value.number_value
            if not math.isfinite(number):
                self.bad(path, f"{number} is not a JSON number")
                return None
            return int(number) if number.is_integer() and abs(number) <= _MAX_EXACT_INT else number
        if kind == "string_value":
            if "\x00" in value.string_value:
                self.bad(path, "contains U+0000 (NUL), which cannot be stored")
            return value.string_value
        if kind == "bool_value":
            return value.bool_value
        if kind == "null_value":
            return None
        self.bad(path, "value has no kind set (null, number, string, bool, object or list)")
        return None


def sanitize(struct: struct_pb2.Struct, field: str, limits: Limits, v: Violations) -> tuple[dict[str, Any], int]:
    """The Struct as plain JSON (integral numbers as ints) and its size; problems go into v.

    Checked: every key at any depth is 1..max_key_length characters without control characters;
    nesting is at most max_depth; numbers are finite; strings hold no NUL (PostgreSQL's jsonb
    cannot store it); the compact JSON is at most max_bytes.
    """
    # Protobuf encodes a value in at most ~6x its compact JSON size: far beyond it, don't walk.
    if struct.ByteSize() > 8 * limits.max_bytes + 1024:
        v.add(field, f"larger than {limits.max_bytes} bytes as JSON")
        return {}, 0
    before = len(v.items)
    walker = _Walker(limits, v)
    clean = walker.struct(struct, field, 1)
    if walker.reported > MAX_REPORTED:
        v.add(field, f"{walker.reported - MAX_REPORTED} more problems not listed")
    if len(v.items) > before:
        return clean, 0
    size = json_size(clean)
    if size > limits.max_bytes:
        v.add(field, f"{size} bytes as JSON; at most {limits.max_bytes}")
    return clean, size
