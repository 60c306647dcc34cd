"""Update masks: which fields an Update RPC replaces, read from the request's own descriptor.

An Update request carries the resource's id (`*_id`), conditions of the call (`expected_version`,
`caller`), an optional `update_mask`, and the fields it may replace; every other field of it is one
of those. A real oneof (e.g. `channel` of email | webhook) is one path, named after the oneof, since
setting one member clears the other. So a service declares nothing but exceptions:

    AGENT_MASK = UpdateMask.of(agent_service_pb2.UpdateAgentRequest, resource=agent_pb2.Agent)
    paths = AGENT_MASK.paths(request, v)   # ("name", "labels"), in the caller's order, no repeats

With a mask, its paths are what changes (so a path whose field is unset clears it). Without one,
the fields that are set change. Either way an empty result is "nothing to update".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from chassis.errors import Violations

MASK_FIELD = "update_mask"
CALL_FIELDS = frozenset({MASK_FIELD, "expected_version", "caller"})
"""Request fields that are conditions of the call, never fields of the resource."""


@dataclass(frozen=True)
class _Path:
    """One maskable path: a field, or a oneof standing for all its members."""

    name: str
    field: FieldDescriptor | None  # None for a oneof


# Descriptors are typed Any here: upb's and pure Python's share the API but not a type.
def _synthetic_oneofs(descriptor: Any) -> frozenset[str]:
    # A proto3 `optional` field sits in a hidden oneof of its own; only the serialized descriptor
    # says which oneofs are those (upb's descriptors do not expose proto3_optional).
    proto = descriptor_pb2.DescriptorProto()
    descriptor.CopyToProto(proto)
    oneofs = (descriptor.fields_by_name[f.name].containing_oneof for f in proto.field if f.proto3_optional)
    return frozenset(oneof.name for oneof in oneofs if oneof is not None)


def _paths_of(descriptor: Any, exclude: frozenset[str]) -> tuple[tuple[_Path, ...], dict[str, str]]:
    """The maskable paths in declaration order, and each real oneof member's oneof."""
    synthetic = _synthetic_oneofs(descriptor)
    paths: list[_Path] = []
    member_of: dict[str, str] = {}
    seen_oneofs: set[str] = set()
    for field in descriptor.fields:
        if field.name in exclude or field.name.endswith("_id"):
            continue
        oneof = field.containing_oneof
        if oneof is None or oneof.name in synthetic:
            paths.append(_Path(field.name, field))
            continue
        member_of[field.name] = oneof.name
        if oneof.name not in seen_oneofs:
            seen_oneofs.add(oneof.name)
            paths.append(_Path(oneof.name, None))
    return tuple(paths), member_of


def _is_set(request: Message, path: _Path) -> bool:
    if path.field is None:
        return request.WhichOneof(path.name) is not None
    value: Any = getattr(request, path.name)
    if path.field.is_repeated:  # lists and maps
        return len(value) > 0
    if path.field.has_presence:  # messages and `optional` scalars
        return request.HasField(path.name)
    return bool(value != path.field.default_value)  # plain scalars and enums: set means not the default


@dataclass(frozen=True)
class UpdateMask:
    """The update rules of one Update request type; build it once, at import."""

    request_type: str
    fields: tuple[str, ...]
    """What may change, in the request's declaration order."""
    immutable: frozenset[str]
    member_of: Mapping[str, str]
    """Each member of a real oneof: the oneof, which is its path."""
    _paths: tuple[_Path, ...]

    @classmethod
    def of(
        cls, request_type: type[Message], *, resource: type[Message] | None = None, immutable: Iterable[str] = (),
        exclude: Iterable[str] = (),
    ) -> UpdateMask:
        """Rules read from the request's descriptor.

        `resource`: the resource message; its fields the request cannot replace are named as
        unchangeable rather than unknown. `immutable`: more such names. `exclude`: request fields
        besides ids, `update_mask`, `expected_version` and `caller` that are not replaceable.
        """
        descriptor = request_type.DESCRIPTOR
        paths, member_of = _paths_of(descriptor, CALL_FIELDS | frozenset(exclude))
        names = tuple(p.name for p in paths)
        fixed = set(immutable)
        if resource is not None:
            fixed |= {f.name for f in resource.DESCRIPTOR.fields}
        return cls(descriptor.full_name, names, frozenset(fixed - set(names)), member_of, paths)

    def paths(self, request: Message, v: Violations | None = None) -> tuple[str, ...]:
        """The paths this request replaces: its mask's (in order, repeats dropped), or else the fields set.

        Every bad path is named as `update_mask.paths[i]` (i as the caller sent it), and an update
        that replaces nothing as `update_mask`. With `v` they join the call's other violations;
        without, they are raised at once as INVALID_ARGUMENT.
        """
        if request.DESCRIPTOR.full_name != self.request_type:  # a programming error, not the caller's
            raise TypeError(f"these update rules are for {self.request_type}, not {request.DESCRIPTOR.full_name}")
        own = Violations() if v is None else v
        one_of = ", ".join(self.fields)
        if request.HasField(MASK_FIELD):
            chosen: list[str] = []
            seen: set[str] = set()
            for i, path in enumerate(getattr(request, MASK_FIELD).paths):
                if path in seen:
                    continue
                seen.add(path)
                problem = self._problem(path, one_of)
                if problem:
                    own.add(f"{MASK_FIELD}.paths[{i}]", problem)
                else:
                    chosen.append(path)
            bad = len(seen) > len(chosen)
        else:
            chosen, bad = [p.name for p in self._paths if _is_set(request, p)], False
        if not chosen and not bad:
            own.add(MASK_FIELD, f"nothing to update: set one of {one_of}")
        if v is None:
            own.raise_if_any()
        return tuple(chosen)

    @staticmethod
    def copied(request: Message, paths: Iterable[str], *names: str) -> dict[str, Any]:
        """The named fields the paths replace, as plain values (maps as dicts, repeated fields as lists):
        the changes an update applies as they are; fields that need converting stay with the servicer."""
        changes: dict[str, Any] = {}
        chosen = set(paths)
        for name in names:
            if name not in chosen:
                continue
            value = getattr(request, name)
            field = request.DESCRIPTOR.fields_by_name[name]
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                value = dict(value)
            elif field.is_repeated:
                value = list(value)
            changes[name] = value
        return changes

    def _problem(self, path: str, one_of: str) -> str:
        if path in self.fields:
            return ""
        if path in self.member_of:
            return f"{path!r} is part of {self.member_of[path]!r}; mask {self.member_of[path]!r} to replace it"
        if path in self.immutable:
            return f"{path!r} cannot be changed; updatable fields: {one_of}"
        return f"unknown field {path!r}; one of {one_of}"
