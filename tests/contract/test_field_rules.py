"""Field rules in the contracts (buf.validate) keep what the contracts promise, and are the validator's own.

* A request field documented as required — `(google.api.field_behavior) = REQUIRED`, or a comment
  that starts with "Required" — must carry a rule that refuses a request without it: an empty
  request, validated as the chassis validates it, names that field.
* Every message's rules compile (a string rule on an int field only fails when first used).
* third_party/proto/buf/validate/validate.proto is exactly what the installed protovalidate enforces.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import protovalidate
from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from chassis import validation
from chassis.paths import DESCRIPTOR_SET, THIRD_PARTY_PROTO_DIR
from chassis.tooling.codegen import VALIDATE_PROTO, compile_files, installed_validate_descriptor

OWN_FILES = "protomesh/"
REQUIRED_COMMENT = re.compile(r"^\s*required\b", re.IGNORECASE)
"""A comment that starts with "Required" documents the field as required ("(url and secret required)" does not)."""
_FIELD, _MESSAGE = 2, 4
"""SourceCodeInfo path parts: FileDescriptorProto.message_type = 4, DescriptorProto.field = 2."""
FIX = (
    "add a rule that refuses it missing, e.g. [(buf.validate.field).required = true], string.min_len = 1, "
    "string.uuid = true, repeated.min_items = 1, or enum = {defined_only: true, not_in: [0]}"
)


def load(path: Path = DESCRIPTOR_SET) -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())


def _pool(descriptor_set: descriptor_pb2.FileDescriptorSet) -> descriptor_pool.DescriptorPool:
    # A private pool: the check needs no generated module, only the descriptor set.
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_set.file:
        pool.Add(file)
    return pool


def documented_required(descriptor_set: descriptor_pb2.FileDescriptorSet) -> dict[str, list[str]]:
    """Request message full name -> its fields documented as required."""
    requests = {
        method.input_type.lstrip(".")
        for file in descriptor_set.file if file.name.startswith(OWN_FILES)
        for service in file.service for method in service.method
    }
    found: dict[str, list[str]] = {}
    for file in descriptor_set.file:
        if not file.name.startswith(OWN_FILES):
            continue
        comments = {tuple(loc.path): loc.leading_comments for loc in file.source_code_info.location}
        for m, message in enumerate(file.message_type):
            full_name = f"{file.package}.{message.name}"
            if full_name not in requests:
                continue
            for f, field in enumerate(message.field):
                behaviors = field.options.Extensions[field_behavior_pb2.field_behavior]
                comment = comments.get((_MESSAGE, m, _FIELD, f), "")
                if field_behavior_pb2.REQUIRED in behaviors or REQUIRED_COMMENT.match(comment):
                    found.setdefault(full_name, []).append(field.name)
    return found


def _top_field(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def unkept_promises(descriptor_set: descriptor_pb2.FileDescriptorSet) -> list[str]:
    """One line per request field documented as required that an empty request may leave out."""
    pool = _pool(descriptor_set)
    problems = []
    for name, fields in sorted(documented_required(descriptor_set).items()):
        empty = message_factory.GetMessageClass(pool.FindMessageTypeByName(name))()
        try:
            refused = {_top_field(v.field) for v in validation.violations(empty)}
        except protovalidate.CompilationError as exc:
            problems.append(f"{name}: its rules do not compile: {exc}")
            continue
        problems += [f"{name}.{field}: documented as required, but no rule refuses it missing"
                     for field in fields if field not in refused]
    return problems


def rule_compile_errors(descriptor_set: descriptor_pb2.FileDescriptorSet) -> list[str]:
    """One line per message of our contracts whose buf.validate rules do not compile."""
    pool = _pool(descriptor_set)
    problems = []
    for file in descriptor_set.file:
        if not file.name.startswith(OWN_FILES):
            continue
        for message in file.message_type:
            name = f"{file.package}.{message.name}"
            try:
                validation.violations(message_factory.GetMessageClass(pool.FindMessageTypeByName(name))())
            except protovalidate.CompilationError as exc:
                problems.append(f"{name}: {exc}")
    return problems


def test_required_request_fields_carry_a_rule() -> None:
    """Every request field the contracts document as required is refused when missing, before the servicer."""
    descriptor_set = load()
    assert documented_required(descriptor_set), f"no field documented as required in {DESCRIPTOR_SET}?"
    problems = unkept_promises(descriptor_set)
    assert not problems, f"{len(problems)} required request fields carry no rule ({FIX}):\n" + "\n".join(problems)


def test_every_rule_compiles() -> None:
    problems = rule_compile_errors(load())
    assert not problems, "buf.validate rules that protovalidate cannot compile:\n" + "\n".join(problems)


SAMPLE = """\
syntax = "proto3";

package protomesh.rulesprobe.v1;

import "buf/validate/validate.proto";
import "google/api/field_behavior.proto";

// ProbeService is a sample.
service ProbeService {
  // Probe probes.
  rpc Probe(ProbeRequest) returns (ProbeResponse);
}

// Kind is a sample enum.
enum Kind {
  // Not given.
  KIND_UNSPECIFIED = 0;
  // A kind.
  KIND_A = 1;
}

// ProbeRequest documents required fields, some without a rule that keeps the promise.
message ProbeRequest {
  // Required: the probe's name.
  string name = 1;
  // The owner.
  string owner = 2 [(google.api.field_behavior) = REQUIRED, (buf.validate.field).string.min_len = 1];
  // The kind: defined_only lets KIND_UNSPECIFIED (0) through.
  Kind kind = 3 [(google.api.field_behavior) = REQUIRED, (buf.validate.field).enum.defined_only = true];
  // The id.
  string id = 4 [(google.api.field_behavior) = REQUIRED, (buf.validate.field).string.uuid = true];
  // Optional note (not required).
  string note = 5;
}

// ProbeResponse is a sample.
message ProbeResponse {
  // A number whose rule is for strings: compiles with protoc, fails in protovalidate.
  int32 count = 1 [(buf.validate.field).string.min_len = 1];
}
"""


def _sample(tmp_path: Path, text: str = SAMPLE) -> descriptor_pb2.FileDescriptorSet:
    path = Path("protomesh/rulesprobe/v1/probe_service.proto")
    (tmp_path / path).parent.mkdir(parents=True)
    (tmp_path / path).write_text(text)
    return compile_files([str(path)], tmp_path, source_info=True)


def test_the_required_check_catches_fields_without_a_refusing_rule(tmp_path: Path) -> None:
    """The checks above can fail: a documented-required field with no rule, or a rule that lets zero pass."""
    sample = _sample(tmp_path)
    assert documented_required(sample) == {"protomesh.rulesprobe.v1.ProbeRequest": ["name", "owner", "kind", "id"]}
    assert unkept_promises(sample) == [
        "protomesh.rulesprobe.v1.ProbeRequest.name: documented as required, but no rule refuses it missing",
        "protomesh.rulesprobe.v1.ProbeRequest.kind: documented as required, but no rule refuses it missing",
    ]
    problems = rule_compile_errors(sample)
    assert len(problems) == 1 and problems[0].startswith("protomesh.rulesprobe.v1.ProbeResponse: "), problems


def test_the_vendored_validate_proto_is_the_installed_one() -> None:
    """Compiled, the vendored file is field for field the descriptor the installed protovalidate embeds."""
    vendored = THIRD_PARTY_PROTO_DIR / VALIDATE_PROTO
    header = vendored.read_text()[:600]
    assert f"protovalidate {version('protovalidate')}" in header and "Apache License 2.0" in header, (
        "the header must name the wheel's version and licence: scripts/gen_protos --vendor-protovalidate"
    )
    assert _compiled_validate_proto() == installed_validate_descriptor(), (
        f"{vendored} differs from the installed protovalidate's: run scripts/gen_protos --vendor-protovalidate"
    )


def _compiled_validate_proto(*extra_include: Path) -> descriptor_pb2.FileDescriptorProto:
    compiled = compile_files([VALIDATE_PROTO], *extra_include)
    return next(f for f in compiled.file if f.name == VALIDATE_PROTO)


def test_a_drifted_validate_proto_is_detected(tmp_path: Path) -> None:
    """The comparison above can fail: a copy with one rule's id changed differs."""
    copy = tmp_path / VALIDATE_PROTO
    copy.parent.mkdir(parents=True)
    text = (THIRD_PARTY_PROTO_DIR / VALIDATE_PROTO).read_text()
    assert 'id: "string.max_len"' in text
    copy.write_text(text.replace('id: "string.max_len"', 'id: "string.too_long"', 1))
    assert _compiled_validate_proto(tmp_path) != installed_validate_descriptor()
