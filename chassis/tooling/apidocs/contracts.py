"""The contracts as the generators see them: every message, enum and comment of the descriptor set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2

from chassis.contracts import mesh_grpc_services
from chassis.paths import DESCRIPTOR_SET
from chassis.tooling.apidocs.comments import comments_by_name
from chassis.tooling.catalog import Catalog, load_catalog


@dataclass(frozen=True)
class Message:
    """A message type with the file it is declared in."""

    full_name: str
    proto: descriptor_pb2.DescriptorProto
    file: descriptor_pb2.FileDescriptorProto

    @property
    def is_map_entry(self) -> bool:
        """Whether protoc synthesised it for a ``map<K, V>`` field."""
        return self.proto.options.map_entry

    def field(self, name: str) -> descriptor_pb2.FieldDescriptorProto:
        """The field called `name`; KeyError naming the message if there is none."""
        for field in self.proto.field:
            if field.name == name:
                return field
        raise KeyError(f"{self.full_name} has no field {name!r}")


@dataclass(frozen=True)
class Enum:
    """An enum type with the file it is declared in."""

    full_name: str
    proto: descriptor_pb2.EnumDescriptorProto
    file: descriptor_pb2.FileDescriptorProto


class Contracts:
    """Lookup of the descriptor set's types and comments, plus the service catalog read from it."""

    def __init__(self, files: list[descriptor_pb2.FileDescriptorProto], catalog: Catalog) -> None:
        self.files = files
        self.catalog = catalog
        self.messages: dict[str, Message] = {}
        self.enums: dict[str, Enum] = {}
        self.comments = comments_by_name(files)
        for file in files:
            for message in file.message_type:
                self._add_message(message, f"{file.package}.{message.name}", file)
            for enum in file.enum_type:
                self.enums[f"{file.package}.{enum.name}"] = Enum(f"{file.package}.{enum.name}", enum, file)

    def _add_message(self, proto: descriptor_pb2.DescriptorProto, name: str,
                     file: descriptor_pb2.FileDescriptorProto) -> None:
        self.messages[name] = Message(name, proto, file)
        for nested in proto.nested_type:
            self._add_message(nested, f"{name}.{nested.name}", file)
        for enum in proto.enum_type:
            self.enums[f"{name}.{enum.name}"] = Enum(f"{name}.{enum.name}", enum, file)

    def message(self, full_name: str) -> Message:
        """The message with this full name (a leading dot, as in type_name, is allowed)."""
        return self.messages[full_name.lstrip(".")]

    def enum(self, full_name: str) -> Enum:
        """The enum with this full name (a leading dot is allowed)."""
        return self.enums[full_name.lstrip(".")]

    def comment(self, full_name: str) -> str:
        """The element's proto comment, or ""."""
        return self.comments.get(full_name, "")

    def service_comment(self, grpc_service: str) -> str:
        """The comment of a gRPC service."""
        return self.comment(grpc_service)

    def file_of_package(self, package: str, suffix: str) -> list[descriptor_pb2.FileDescriptorProto]:
        """The package's files whose name ends with `suffix`, e.g. ``/events.proto``."""
        return [f for f in self.files if f.package == package and f.name.endswith(suffix)]


def load_contracts(descriptor_set: Path = DESCRIPTOR_SET, catalog: Catalog | None = None) -> Contracts:
    """Read the descriptor set (``gen/protomesh.binpb`` by default) with its options understood.

    The contracts' Python modules are imported first: parsing registers the google.api.http and
    buf.validate extensions (and the contracts' own predefined rules) only if their modules are
    loaded, otherwise the options would stay unknown bytes.
    """
    mesh_grpc_services()
    import chassis.tooling.apidocs.rules  # noqa: F401  (registers the buf.validate options)

    data = Path(descriptor_set).read_bytes()
    files = list(descriptor_pb2.FileDescriptorSet.FromString(data).file)
    # Error bodies are google.rpc.Status with google.rpc details whatever a set imports (protomesh's
    # always carries them, for Envoy's transcoder); a set without them gets them from the library.
    from google.rpc import error_details_pb2, status_pb2

    names = {file.name for file in files}
    for module in (status_pb2, error_details_pb2):
        if module.DESCRIPTOR.name not in names:
            proto = descriptor_pb2.FileDescriptorProto()
            module.DESCRIPTOR.CopyToProto(proto)
            files.append(proto)
    return Contracts(files, catalog if catalog is not None else load_catalog(descriptor_set))
