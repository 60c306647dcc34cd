"""Proto comments by full name, read from a file's SourceCodeInfo.

A location's path is a list of field numbers and indices into the FileDescriptorProto
(e.g. ``[4, 0, 2, 3]`` is message 0's field 3); this module walks the file once, names every
element it knows and pairs it with the comment protoc recorded for that path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from google.protobuf import descriptor_pb2

# Field numbers in descriptor.proto that lead to the elements we document.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE, _FILE_EXTENSION = 4, 5, 6, 7
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM, _MESSAGE_EXTENSION = 2, 3, 4, 6
_ENUM_VALUE = 2
_SERVICE_METHOD = 2

Path = tuple[int, ...]


def comments_by_name(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> dict[str, str]:
    """Full name -> comment of every message, field, enum, enum value, service, method and extension.

    Fields are named ``<message full name>.<field>``, enum values ``<enum full name>.<VALUE>``,
    methods ``<service full name>.<Method>``. Elements without a comment are left out.
    """
    found: dict[str, str] = {}
    for file in files:
        texts = {tuple(loc.path): _text(loc) for loc in file.source_code_info.location}
        for name, path in _named_paths(file):
            text = texts.get(path)
            if text:
                found[name] = text
    return found


def _text(location: descriptor_pb2.SourceCodeInfo.Location) -> str:
    # The leading comment is the documentation; a trailing one stands in when there is none.
    raw = location.leading_comments or location.trailing_comments
    lines = [line.strip() for line in raw.strip().splitlines()]
    return "\n".join(lines).strip()


def _named_paths(file: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[str, Path]]:
    prefix = file.package
    for i, message in enumerate(file.message_type):
        yield from _message_paths(message, f"{prefix}.{message.name}", (_FILE_MESSAGE, i))
    for i, enum in enumerate(file.enum_type):
        yield from _enum_paths(enum, f"{prefix}.{enum.name}", (_FILE_ENUM, i))
    for i, service in enumerate(file.service):
        name = f"{prefix}.{service.name}"
        yield name, (_FILE_SERVICE, i)
        for j, method in enumerate(service.method):
            yield f"{name}.{method.name}", (_FILE_SERVICE, i, _SERVICE_METHOD, j)
    for i, extension in enumerate(file.extension):
        yield f"{prefix}.{extension.name}", (_FILE_EXTENSION, i)


def _message_paths(message: descriptor_pb2.DescriptorProto, name: str, path: Path) -> Iterator[tuple[str, Path]]:
    yield name, path
    for i, field in enumerate(message.field):
        yield f"{name}.{field.name}", (*path, _MESSAGE_FIELD, i)
    for i, nested in enumerate(message.nested_type):
        yield from _message_paths(nested, f"{name}.{nested.name}", (*path, _MESSAGE_NESTED, i))
    for i, enum in enumerate(message.enum_type):
        yield from _enum_paths(enum, f"{name}.{enum.name}", (*path, _MESSAGE_ENUM, i))
    for i, extension in enumerate(message.extension):
        # Extensions declared inside a message are scoped by it, as their full names are.
        yield f"{name}.{extension.name}", (*path, _MESSAGE_EXTENSION, i)


def _enum_paths(enum: descriptor_pb2.EnumDescriptorProto, name: str, path: Path) -> Iterator[tuple[str, Path]]:
    yield name, path
    for i, value in enumerate(enum.value):
        yield f"{name}.{value.name}", (*path, _ENUM_VALUE, i)
