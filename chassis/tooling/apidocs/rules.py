"""buf.validate field rules as JSON Schema keywords.

What JSON Schema can say is said as keywords (minLength, pattern, minimum, enum, format, ...);
what it cannot (CEL expressions, byte lengths, bounds on Durations, 64-bit bounds on values the
proto3 JSON mapping prints as strings) goes into ``notes``, which the schema builder adds to the
field's description and to ``x-validate``, so a reader still sees every rule of the contract.

Predefined rules (the contracts' own, e.g. ``protomesh.common.v1.resource_name``) are CEL; the
common shapes of their expressions are translated (see ``cel_keywords``), and the rule's comment
is always kept as a note.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import message as pb_message

Schema = dict[str, Any]

# buf.validate's generated stubs (gen/buf) do not pass the type checker (they name a private protobuf
# type) and only protomesh.* is exempted from it, so the module is loaded untyped. Loading it also
# registers the options, so descriptors parsed afterwards carry the rules as known extensions.
validate_pb2: Any = importlib.import_module("buf.validate.validate_pb2")

_FORMATS = {"email": "email", "hostname": "hostname", "ipv4": "ipv4", "ipv6": "ipv6", "uri": "uri",
            "uri_ref": "uri-reference", "uuid": "uuid"}
# Well-known string rules without a JSON Schema format: a pattern says the same thing.
_WELL_KNOWN_PATTERNS = {"tuuid": "^[0-9a-fA-F]{32}$", "ulid": "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"}
_NUMERIC = {"const": "const", "lt": "exclusiveMaximum", "lte": "maximum", "gt": "exclusiveMinimum",
            "gte": "minimum"}
# RE2 classes Python's re (and so the jsonschema validator) lacks, as explicit ranges.
_RE2_CLASSES = {r"\p{Cc}": r"[\x00-\x1f\x7f-\x9f]"}


@dataclass
class Constraints:
    """What a field's rules add to its schema."""

    keywords: Schema = field(default_factory=dict)
    """JSON Schema keywords; ``items``, ``propertyNames`` and ``additionalProperties`` hold partial
    schemas to merge into the ones the field's type already has."""
    notes: list[str] = field(default_factory=list)
    """Rules JSON Schema cannot express, as text."""
    required: bool = False
    """``required: true``: the field must be set (for a scalar: not its zero value)."""


class _Keywords:
    """Keyword accumulator: a second value for a keyword becomes an ``allOf`` entry, not an overwrite."""

    def __init__(self) -> None:
        self.schema: Schema = {}
        self.negated: list[Schema] = []

    def add(self, key: str, value: Any) -> None:
        if key in self.schema:
            self.schema.setdefault("allOf", []).append({key: value})
        else:
            self.schema[key] = value

    def forbid(self, schema: Schema) -> None:
        self.negated.append(schema)

    def result(self) -> Schema:
        out = dict(self.schema)
        if self.negated:
            out["not"] = self.negated[0] if len(self.negated) == 1 else {"anyOf": self.negated}
        return out


def field_constraints(rules: Any, *, kind: str, enum_values: Mapping[int, str] | None = None,
                      comments: Mapping[str, str] | None = None, zero: Any = None) -> Constraints:
    """The constraints of one field's rules.

    `kind` is the field's JSON shape: "string", "integer", "int64" (printed as a string),
    "number", "boolean", "bytes", "enum", "message", "repeated" or "map"; `enum_values` maps an
    enum field's numbers to names; `zero` is the JSON zero value, for ``IGNORE_IF_ZERO_VALUE``.
    """
    comments = comments or {}
    out = Constraints(required=rules.required)
    if rules.ignore == validate_pb2.IGNORE_ALWAYS:
        out.notes.append("rules not enforced (ignore: IGNORE_ALWAYS)")
        return out
    out.notes.extend(_cel_notes(rules.cel, rules.cel_expression))
    which = rules.WhichOneof("type")
    if which is not None:
        keywords, notes = _type_keywords(which, getattr(rules, which), kind, enum_values or {}, comments)
        out.notes.extend(notes)
        if keywords and rules.ignore == validate_pb2.IGNORE_IF_ZERO_VALUE and zero is not None:
            # The rules only apply to a value that is set; the zero value passes whatever they say.
            keywords = {"anyOf": [{"const": zero}, keywords]}
        out.keywords = keywords
    return out


def message_notes(rules: Any) -> list[str]:
    """The message-level rules (CEL and oneof rules) as text."""
    notes = _cel_notes(rules.cel, rules.cel_expression)
    for oneof in rules.oneof:
        notes.append(f"{'exactly' if oneof.required else 'at most'} one of {', '.join(oneof.fields)}")
    return notes


def _cel_notes(rules: Any, expressions: Any) -> list[str]:
    notes = [f"{rule.id}: {rule.message or rule.expression}" if rule.id else (rule.message or rule.expression)
             for rule in rules]
    notes.extend(f"CEL: {expression}" for expression in expressions)
    return notes


def _type_keywords(which: str, rules: pb_message.Message, kind: str, enum_values: Mapping[int, str],
                   comments: Mapping[str, str]) -> tuple[Schema, list[str]]:
    if which == "repeated":
        return _repeated(rules, comments)
    if which == "map":
        return _map(rules, comments)
    acc = _Keywords()
    notes: list[str] = []
    handler = _HANDLERS.get(which, _as_notes)
    for descriptor, value in rules.ListFields():
        if descriptor.is_extension:
            _predefined(descriptor, value, kind, acc, notes, comments)
        else:
            handler(descriptor.name, value, kind, enum_values, acc, notes)
    return acc.result(), notes


def _string(name: str, value: Any, kind: str, enum_values: Mapping[int, str], acc: _Keywords,
            notes: list[str]) -> None:
    if name == "const":
        acc.add("const", value)
    elif name == "len":
        acc.add("minLength", value)
        acc.add("maxLength", value)
    elif name in ("min_len", "max_len"):
        acc.add("minLength" if name == "min_len" else "maxLength", value)
    elif name == "pattern":
        pattern = _ecma(value)
        if pattern is None:
            notes.append(f"pattern (RE2): {value}")
        else:
            acc.add("pattern", pattern)
    elif name in ("prefix", "suffix", "contains"):
        literal = re.escape(value)
        acc.add("pattern", f"^{literal}" if name == "prefix" else f"{literal}$" if name == "suffix" else literal)
    elif name == "not_contains":
        acc.forbid({"pattern": re.escape(value)})
    elif name == "in":
        acc.add("enum", list(value))
    elif name == "not_in":
        acc.forbid({"enum": list(value)})
    elif name in _FORMATS and value:
        acc.add("format", _FORMATS[name])
    elif name == "ip" and value:
        acc.add("anyOf", [{"format": "ipv4"}, {"format": "ipv6"}])
    elif name in _WELL_KNOWN_PATTERNS and value:
        acc.add("pattern", _WELL_KNOWN_PATTERNS[name])
    else:
        _as_notes(name, value, kind, enum_values, acc, notes)


def _numeric(name: str, value: Any, kind: str, enum_values: Mapping[int, str], acc: _Keywords,
             notes: list[str]) -> None:
    # 64-bit integers are JSON strings; numeric keywords would silently not apply to them.
    if kind == "int64":
        _as_notes(name, value, kind, enum_values, acc, notes)
    elif name in _NUMERIC:
        acc.add(_NUMERIC[name], value)
    elif name == "in":
        acc.add("enum", list(value))
    elif name == "not_in":
        acc.forbid({"enum": list(value)})
    else:
        _as_notes(name, value, kind, enum_values, acc, notes)


def _enum(name: str, value: Any, kind: str, enum_values: Mapping[int, str], acc: _Keywords,
          notes: list[str]) -> None:
    if name == "const":
        acc.add("const", enum_values.get(value, value))
    elif name == "defined_only":
        pass  # The schema lists the defined names already; this rule only refuses unknown numbers.
    elif name == "in":
        acc.add("enum", [enum_values.get(v, v) for v in value])
    elif name == "not_in":
        acc.forbid({"enum": [enum_values.get(v, v) for v in value]})
    else:
        _as_notes(name, value, kind, enum_values, acc, notes)


def _bool(name: str, value: Any, kind: str, enum_values: Mapping[int, str], acc: _Keywords,
          notes: list[str]) -> None:
    if name == "const":
        acc.add("const", value)
    else:
        _as_notes(name, value, kind, enum_values, acc, notes)


def _as_notes(name: str, value: Any, kind: str, enum_values: Mapping[int, str], acc: _Keywords,
              notes: list[str]) -> None:
    if name == "example":
        return
    shown = value if isinstance(value, (str, int, float, bool)) else _text(value)
    notes.append(f"{name}: {shown}")


def _text(value: Any) -> str:
    if isinstance(value, pb_message.Message):
        from google.protobuf import text_format

        return text_format.MessageToString(value, as_one_line=True)
    return ", ".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


_Handler = Callable[[str, Any, str, Mapping[int, str], _Keywords, list[str]], None]
_HANDLERS: dict[str, _Handler] = {
    "string": _string, "enum": _enum, "bool": _bool,
    **{kind: _numeric for kind in ("int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32",
                                   "fixed64", "sfixed32", "sfixed64", "float", "double")},
}


def _repeated(rules: Any, comments: Mapping[str, str]) -> tuple[Schema, list[str]]:
    acc = _Keywords()
    notes: list[str] = []
    for descriptor, value in rules.ListFields():
        name = descriptor.name
        if descriptor.is_extension:
            _predefined(descriptor, value, "repeated", acc, notes, comments)
        elif name in ("min_items", "max_items"):
            acc.add("minItems" if name == "min_items" else "maxItems", value)
        elif name == "unique":
            acc.add("uniqueItems", value)
        elif name == "items":
            inner = _nested(value, comments)
            acc.schema["items"] = inner.keywords
            notes.extend(f"each item: {note}" for note in inner.notes)
    return acc.result(), notes


def _map(rules: Any, comments: Mapping[str, str]) -> tuple[Schema, list[str]]:
    acc = _Keywords()
    notes: list[str] = []
    for descriptor, value in rules.ListFields():
        name = descriptor.name
        if descriptor.is_extension:
            _predefined(descriptor, value, "map", acc, notes, comments)
        elif name in ("min_pairs", "max_pairs"):
            acc.add("minProperties" if name == "min_pairs" else "maxProperties", value)
        elif name in ("keys", "values"):
            inner = _nested(value, comments)
            acc.schema["propertyNames" if name == "keys" else "additionalProperties"] = inner.keywords
            notes.extend(f"each {name[:-1]}: {note}" for note in inner.notes)
    return acc.result(), notes


def _nested(rules: Any, comments: Mapping[str, str]) -> Constraints:
    # Items, keys and values: their kind follows from which rules they carry.
    which = rules.WhichOneof("type") or ""
    kind = {"string": "string", "bool": "boolean", "enum": "enum", "bytes": "bytes",
            "float": "number", "double": "number"}.get(which, "int64" if "64" in which else "integer")
    return field_constraints(rules, kind=kind, comments=comments)


# -- predefined (CEL) rules ---------------------------------------------------------------------

_STRING = r"'((?:[^'\\]|\\.)*)'"
# The optional leading '!' matters: `!this.matches(RE) ? ''` (notification's printable rule) is valid when
# RE does NOT match; read without it, the document required the control characters it forbids (found by
# fuzzing: every webhook URL the service returned broke its own response schema).
_MATCHES = re.compile(r"(!\s*)?this\.matches\(" + _STRING + r"\)\s*\?\s*" + _STRING)
_SIZE = re.compile(r"size\(this\)\s*(<=|<|>=|>)\s*(\d+)\s*\?\s*" + _STRING)
_EMPTY = re.compile(r"this\s*==\s*''\s*\?\s*'")
_IN = re.compile(r"this\s+in\s+\[([^\]]*)\]\s*\?\s*''")
_ESCAPE = re.compile(r"\\(.)")
_NEGATED = {"<=": ">", "<": ">=", ">=": "<", ">": "<="}
_SIZE_BOUND = {"<=": ("max", 0), "<": ("max", -1), ">=": ("min", 0), ">": ("min", 1)}


def _predefined(descriptor: Any, value: Any, kind: str, acc: _Keywords, notes: list[str],
                comments: Mapping[str, str]) -> None:
    """A contract's own rule: its CEL turned into keywords where the shape is known, its comment as a note."""
    comment = comments.get(descriptor.full_name, "")
    notes.append(f"{descriptor.full_name}: {first_sentence(comment)}" if comment else descriptor.full_name)
    if value is not True:
        return  # Only boolean switches are translated: other rule values feed the CEL as `rule`.
    options = descriptor.GetOptions()
    if not options.HasExtension(validate_pb2.predefined):
        return
    for rule in options.Extensions[validate_pb2.predefined].cel:
        for key, found in cel_keywords(rule.expression, kind).items():
            if key == "not":
                for negated in found:
                    acc.forbid(negated)
            else:
                acc.add(key, found)


def first_sentence(text: str) -> str:
    """The first sentence of a comment on one line (rule comments go on with examples for contract authors)."""
    flat = " ".join(text.split())
    end = flat.find(". ")
    return flat if end < 0 else flat[:end + 1]


def cel_keywords(expression: str, kind: str) -> dict[str, Any]:
    """Keywords for the common shapes of a rule's CEL, where ``''`` means valid and a text means invalid.

    ``this.matches(RE) ? ''`` -> pattern; ``this.matches(RE) ? 'why'`` -> not pattern (and the reverse
    for ``!this.matches(RE)``);
    ``this == '' ? 'why'`` -> minLength 1; ``size(this) > N ? 'why'`` / ``size(this) <= N ? ''``
    -> a maximum length, item or property count (by `kind`); ``this in [...] ? ''`` -> enum.
    Anything else is left to the note the caller writes.
    """
    found: dict[str, Any] = {}
    negated: list[Schema] = []
    for match in _MATCHES.finditer(expression):
        pattern = _ecma(_unescape(match[2]))
        if pattern is None:
            continue
        if (match[3] == "") != bool(match[1]):  # valid when it matches: '' on a match, or a text on no match
            found["pattern"] = pattern
        else:
            negated.append({"pattern": pattern})
    for match in _SIZE.finditer(expression):
        op, bound = match[1], int(match[2])
        if match[3] != "":
            op = _NEGATED[op]  # the text is the refusal, so the valid sizes are the opposite
        keyword, limit = _SIZE_BOUND[op]
        found[_size_keyword(kind, keyword)] = bound + limit
    if kind == "string" and _EMPTY.search(expression):
        found.setdefault("minLength", 1)
    listed = _IN.search(expression)
    if listed:
        found["enum"] = [_unescape(item) for item in re.findall(_STRING, listed[1])]
    if negated:
        found["not"] = negated
    return found


def _size_keyword(kind: str, bound: str) -> str:
    noun = {"map": "Properties", "repeated": "Items"}.get(kind, "Length")
    return f"{bound}{noun}"


def _unescape(literal: str) -> str:
    return _ESCAPE.sub(lambda m: m[1], literal)


def _ecma(pattern: str) -> str | None:
    """An RE2 pattern usable by JSON Schema validators (ECMA-262 and Python's re), or None."""
    for re2, plain in _RE2_CLASSES.items():
        pattern = pattern.replace(re2, plain)
    try:
        re.compile(pattern)
    except re.error:
        return None
    return pattern
