"""Regenerates gen/ from proto/: Python stubs (grpcio-tools) and Envoy's descriptor set.

`--vendor-protovalidate` also rewrites third_party/proto/buf/validate/validate.proto from the
installed protovalidate wheel, so the rules our contracts declare are exactly those it enforces.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    field_mask_pb2,
    message_factory,
    text_encoding,
    text_format,
    timestamp_pb2,
)
from google.protobuf.message import Message
from grpc_tools import protoc

from chassis.paths import GEN_DIR, PROTO_DIR, THIRD_PARTY_PROTO_DIR

DESCRIPTOR_SET_NAME = "protomesh.binpb"
# Error-detail types are not imported by our contracts but must be in the descriptor set so
# Envoy's transcoder can render google.rpc.Status details as JSON.
EXTRA_DESCRIPTOR_PROTOS = ("google/rpc/status.proto", "google/rpc/error_details.proto")
VALIDATE_PROTO = "buf/validate/validate.proto"
# protovalidate 2 ships validate.proto only as protobuf-py code, not as the google.protobuf module
# (buf.validate.validate_pb2) that our stubs import once a contract uses a buf.validate option, so
# that one vendored file gets Python stubs here too. The google/* ones come from googleapis-common-protos.
VENDORED_STUBS = (VALIDATE_PROTO,)
GENERATED_PACKAGES = ("protomesh", "buf")
"""Top-level packages written into gen/; regeneration replaces each of them whole."""


def contract_files(proto_dir: Path = PROTO_DIR) -> list[str]:
    """All .proto files of our contracts, relative to proto/, sorted for stable output."""
    return sorted(str(p.relative_to(proto_dir)) for p in proto_dir.rglob("*.proto"))


def _protoc(args: list[str], extra_include: tuple[Path, ...] = ()) -> None:
    well_known = str(resources.files("grpc_tools") / "_proto")
    includes = [f"-I{path}" for path in (*extra_include, PROTO_DIR, THIRD_PARTY_PROTO_DIR, well_known)]
    argv = ["protoc", *includes, *args]
    if protoc.main(argv) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(argv)}")


def compile_files(
    files: list[str], *extra_include: Path, source_info: bool = False
) -> descriptor_pb2.FileDescriptorSet:
    """The descriptor set of some .proto files and everything they import (for tests and tools).

    Files are found in extra_include first, then in proto/, third_party/proto and the well-known types.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.binpb"
        flags = ["--include_imports", f"--descriptor_set_out={out}"]
        _protoc([*flags, *(["--include_source_info"] if source_info else []), *files], extra_include)
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _drop_imported_comments(descriptor_set: Path, own_files: set[str]) -> None:
    """Keep source info only for our contracts: the imported files' comments (descriptor.proto's alone
    are most of it) would make Envoy's descriptor set several times larger for nothing."""
    # Parsed with a class from a pool that knows no extension: custom options stay unknown fields and
    # are written back byte for byte, whichever *_pb2 modules this process happens to have imported.
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(descriptor_pb2.DESCRIPTOR.serialized_pb)
    file_set = message_factory.GetMessageClass(pool.FindMessageTypeByName("google.protobuf.FileDescriptorSet"))
    files: Any = file_set.FromString(descriptor_set.read_bytes())
    for file in files.file:
        if file.name not in own_files:
            file.ClearField("source_code_info")
    descriptor_set.write_bytes(files.SerializeToString(deterministic=True))


def generate(out_dir: Path) -> None:
    """Write Python stubs and the descriptor set for every contract into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = contract_files()
    _protoc([f"--python_out={out_dir}", f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}", *files])
    _protoc([f"--python_out={out_dir}", f"--pyi_out={out_dir}", *VENDORED_STUBS])
    descriptor_set = out_dir / DESCRIPTOR_SET_NAME
    _protoc(
        [
            "--include_imports",
            # Our contracts' comments travel with their descriptors: the contract tests read what a
            # field's comment promises (e.g. "Required") and check that its rules keep the promise.
            "--include_source_info",
            f"--descriptor_set_out={descriptor_set}",
            *files,
            *EXTRA_DESCRIPTOR_PROTOS,
        ]
    )
    _drop_imported_comments(descriptor_set, set(files))
    for top in GENERATED_PACKAGES:
        for package_dir in [out_dir / top, *(p for p in (out_dir / top).rglob("*") if p.is_dir())]:
            if package_dir.name != "__pycache__":
                (package_dir / "__init__.py").touch()


# --- validate.proto, printed back from the descriptor the protovalidate wheel embeds -------------
# The wheel carries no .proto text (and no comments), only its FileDescriptorProto; this prints that
# as .proto source. installed_validate_descriptor() is what it must compile back to, field for field.

_MAX_FIELD_NUMBER = 536870911
_MAX_ENUM_NUMBER = 2147483647
_SCALARS = {
    getattr(descriptor_pb2.FieldDescriptorProto, f"TYPE_{name.upper()}"): name
    for name in ("double", "float", "int64", "uint64", "int32", "fixed64", "fixed32", "bool", "string", "bytes",
                 "uint32", "sfixed32", "sfixed64", "sint32", "sint64")
}
_LICENCE = """\
// Vendored, unchanged in meaning, from the PyPI wheel protovalidate {version} (github.com/bufbuild/protovalidate,
// Copyright Buf Technologies, Inc., Apache License 2.0: http://www.apache.org/licenses/LICENSE-2.0).
// Printed from the descriptor the wheel embeds by `scripts/gen_protos --vendor-protovalidate`, so it is
// the exact rule set the installed validator enforces; the wheel has no comments, see
// https://protovalidate.com/reference/ for each rule's documentation. Do not edit by hand.

"""


def installed_validate_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """buf/validate/validate.proto as the installed protovalidate wheel defines it."""
    import protovalidate  # the tooling's dependency only; the runtime imports it in chassis.validation

    raw = protovalidate.ViolationPb.desc().file.proto.to_binary()
    return descriptor_pb2.FileDescriptorProto.FromString(raw)


def _options_reader(file: descriptor_pb2.FileDescriptorProto) -> Callable[[Message], Message]:
    """Re-reads an options message with the file's own extensions known (they are unknown fields otherwise)."""
    pool = descriptor_pool.DescriptorPool()
    for module in (descriptor_pb2, duration_pb2, field_mask_pb2, timestamp_pb2):
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    pool.Add(file)

    def read(options: Message) -> Message:
        cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(options.DESCRIPTOR.full_name))
        return cls.FromString(options.SerializeToString())

    return read


class _Printer:
    def __init__(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        self.file = file
        self.read_options = _options_reader(file)
        self.lines: list[str] = []

    def type_name(self, name: str) -> str:
        own = f".{self.file.package}."
        return name[len(own):] if name.startswith(own) else name.lstrip(".")

    def option_values(self, options: Message, indent: str) -> list[str]:
        """`name = value` for each option set, extensions as `(full.name)`; message values in text format."""
        out = []
        for field, value in self.read_options(options).ListFields():
            name = f"({field.full_name})" if field.is_extension else field.name
            for item in value if field.is_repeated else [value]:
                if field.type == field.TYPE_MESSAGE:
                    # Single quotes need no escape inside a double-quoted string; CEL is easier to read without.
                    body = text_format.MessageToString(item, indent=len(indent) + 2).replace("\\'", "'")
                    out.append(f"{name} = {{\n{body}{indent}}}")
                elif field.enum_type is not None:
                    out.append(f"{name} = {field.enum_type.values_by_number[item].name}")
                elif field.type == field.TYPE_STRING:
                    out.append(f'{name} = "{text_encoding.CEscape(item, as_utf8=True)}"')
                elif field.type == field.TYPE_BOOL:
                    out.append(f"{name} = {str(item).lower()}")
                else:
                    out.append(f"{name} = {item}")
        return out

    def field(self, field: descriptor_pb2.FieldDescriptorProto, indent: str, in_oneof: bool) -> None:
        label = ""
        if not in_oneof and (self.file.syntax in ("", "proto2") or field.proto3_optional
                             or field.label == field.LABEL_REPEATED):
            label = descriptor_pb2.FieldDescriptorProto.Label.Name(field.label)[len("LABEL_"):].lower() + " "
        kind = _SCALARS.get(field.type) or self.type_name(field.type_name)
        options = self.option_values(field.options, indent)
        suffix = f" [{', '.join(options)}]" if options else ""
        self.lines.append(f"{indent}{label}{kind} {field.name} = {field.number}{suffix};")

    def ranges(self, keyword: str, ranges: list[tuple[int, int]], top: int, indent: str) -> None:
        """`reserved`/`extensions` ranges, given inclusive."""
        if ranges:
            parts = [str(a) if a == b else f"{a} to {'max' if b == top else b}" for a, b in ranges]
            self.lines.append(f"{indent}{keyword} {', '.join(parts)};")

    def reserved_names(self, names: list[str], indent: str) -> None:
        if names:
            quoted = ", ".join(f'"{name}"' for name in names)
            self.lines.append(f"{indent}reserved {quoted};")

    def message(self, message: descriptor_pb2.DescriptorProto, indent: str) -> None:
        self.lines.append(f"{indent}message {message.name} {{")
        inner = indent + "  "
        for option in self.option_values(message.options, inner):
            self.lines.append(f"{inner}option {option};")
        printed_oneofs: set[int] = set()
        for field in message.field:
            if not field.HasField("oneof_index") or field.proto3_optional:
                self.field(field, inner, in_oneof=False)
            elif field.oneof_index not in printed_oneofs:
                printed_oneofs.add(field.oneof_index)
                self.lines.append(f"{inner}oneof {message.oneof_decl[field.oneof_index].name} {{")
                for option in self.option_values(message.oneof_decl[field.oneof_index].options, inner + "  "):
                    self.lines.append(f"{inner}  option {option};")
                for member in message.field:
                    if member.HasField("oneof_index") and member.oneof_index == field.oneof_index:
                        self.field(member, inner + "  ", in_oneof=True)
                self.lines.append(f"{inner}}}")
        for nested in message.nested_type:
            self.message(nested, inner)
        for enum in message.enum_type:
            self.enum(enum, inner)
        self.ranges("extensions", [(r.start, r.end - 1) for r in message.extension_range], _MAX_FIELD_NUMBER, inner)
        self.ranges("reserved", [(r.start, r.end - 1) for r in message.reserved_range], _MAX_FIELD_NUMBER, inner)
        self.reserved_names(list(message.reserved_name), inner)
        self.lines.append(f"{indent}}}")

    def enum(self, enum: descriptor_pb2.EnumDescriptorProto, indent: str) -> None:
        self.lines.append(f"{indent}enum {enum.name} {{")
        inner = indent + "  "
        for option in self.option_values(enum.options, inner):
            self.lines.append(f"{inner}option {option};")
        for value in enum.value:
            options = self.option_values(value.options, inner)
            suffix = f" [{', '.join(options)}]" if options else ""
            self.lines.append(f"{inner}{value.name} = {value.number}{suffix};")
        self.ranges("reserved", [(r.start, r.end) for r in enum.reserved_range], _MAX_ENUM_NUMBER, inner)
        self.reserved_names(list(enum.reserved_name), inner)
        self.lines.append(f"{indent}}}")

    def source(self) -> str:
        file = self.file
        self.lines += [f'syntax = "{file.syntax or "proto2"}";', "", f"package {file.package};", ""]
        self.lines += [f'import "{dependency}";' for dependency in file.dependency] + [""]
        self.lines += [f"option {option};" for option in self.option_values(file.options, "")] + [""]
        extendee = None
        for extension in file.extension:
            if extension.extendee != extendee:
                if extendee is not None:
                    self.lines += ["}", ""]
                extendee = extension.extendee
                self.lines.append(f"extend {self.type_name(extendee)} {{")
            self.field(extension, "  ", in_oneof=False)
        if extendee is not None:
            self.lines += ["}", ""]
        for message in file.message_type:
            self.message(message, "")
            self.lines.append("")
        for enum in file.enum_type:
            self.enum(enum, "")
            self.lines.append("")
        return "\n".join(self.lines).rstrip("\n") + "\n"


def proto_text(file: descriptor_pb2.FileDescriptorProto) -> str:
    """.proto source that compiles back to `file` (comments aside: descriptors without source info have none)."""
    return _Printer(file).source()


def installed_validate_proto() -> str:
    """The vendored file's text: licence header, then the wheel's validate.proto printed back."""
    from importlib.metadata import version

    return _LICENCE.format(version=version("protovalidate")) + proto_text(installed_validate_descriptor())


def vendor_protovalidate(third_party: Path = THIRD_PARTY_PROTO_DIR) -> Path:
    """Write buf/validate/validate.proto as the installed protovalidate wheel defines it; return its path."""
    target = third_party / VALIDATE_PROTO
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(installed_validate_proto())
    return target


def main(argv: list[str] | None = None) -> int:
    """Entry point of scripts/gen_protos."""
    parser = argparse.ArgumentParser(description="Regenerate gen/ (Python stubs + Envoy descriptor set) from proto/.")
    parser.add_argument("--out", type=Path, default=GEN_DIR, help="output folder (default: gen/)")
    parser.add_argument(
        "--vendor-protovalidate",
        action="store_true",
        help=f"first rewrite third_party/proto/{VALIDATE_PROTO} from the installed protovalidate (after an upgrade)",
    )
    args = parser.parse_args(argv)
    if args.vendor_protovalidate:
        print(f"vendored {vendor_protovalidate()}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "gen"
        generate(staged)
        if args.out.exists():
            for top in GENERATED_PACKAGES:
                shutil.rmtree(args.out / top, ignore_errors=True)
            (args.out / DESCRIPTOR_SET_NAME).unlink(missing_ok=True)
        shutil.copytree(staged, args.out, dirs_exist_ok=True)
    print(f"generated {len(contract_files())} contracts into {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
