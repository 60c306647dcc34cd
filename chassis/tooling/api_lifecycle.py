"""Deprecated APIs, from the contracts' `(protomesh.options.v1.lifecycle)` options (docs/versions.md).

One reading of the option serves the gateway and the API document, so the two cannot disagree:

- chassis.tooling.envoy_config: every route of a deprecated method answers with `Deprecation`
  (RFC 9745, `@<unix seconds>`), `Sunset` (RFC 8594, an HTTP-date) and `Link` (rel="deprecation" and
  rel="sunset", the migration notes) headers, which a gRPC caller receives as initial metadata;
- chassis.tooling.apidocs.openapi: the method's operations are `deprecated: true`, with the dates and
  the successor in `x-lifecycle` and the headers documented on the 200 response.

The option sits on a service (every method) and may be overridden per method; `unversioned: true` on
a method exempts it (the replica's health probes, whose paths carry no version).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any, cast

from google.protobuf import descriptor_pb2

# Importing lifecycle_pb2 registers the extensions, so options parsed afterwards carry them as fields.
from protomesh.options.v1 import lifecycle_pb2

DEPRECATION_HEADER = "deprecation"
SUNSET_HEADER = "sunset"
LINK_HEADER = "link"

if TYPE_CHECKING:
    from google.protobuf.internal.extension_dict import _ExtensionFieldDescriptor

SERVICE_LIFECYCLE = cast("_ExtensionFieldDescriptor[descriptor_pb2.ServiceOptions, lifecycle_pb2.Lifecycle]",
                         lifecycle_pb2.lifecycle)
"""`(protomesh.options.v1.lifecycle)` on a service."""
METHOD_LIFECYCLE = cast("_ExtensionFieldDescriptor[descriptor_pb2.MethodOptions, lifecycle_pb2.Lifecycle]",
                        lifecycle_pb2.method_lifecycle)
"""`(protomesh.options.v1.method_lifecycle)` on a method."""


@dataclass(frozen=True)
class Deprecation:
    """A deprecated method's dates and where its callers go next."""

    since: datetime
    sunset: datetime | None
    migration_url: str
    successor: str

    def headers(self) -> dict[str, str]:
        """The response headers (lower case, as HTTP/2 and gRPC metadata carry them)."""
        headers = {DEPRECATION_HEADER: f"@{int(self.since.timestamp())}"}
        links = [f'<{self.migration_url}>; rel="deprecation"']
        if self.sunset is not None:
            headers[SUNSET_HEADER] = format_datetime(self.sunset, usegmt=True)
            links.append(f'<{self.migration_url}>; rel="sunset"')
        headers[LINK_HEADER] = ", ".join(links)
        return headers

    def describe(self) -> dict[str, str]:
        """The dates (RFC 3339), the notes and the successor, for the API document's `x-lifecycle`."""
        described = {"deprecated_since": self.since.isoformat().replace("+00:00", "Z"),
                     "migration_url": self.migration_url}
        if self.sunset is not None:
            described["sunset"] = self.sunset.isoformat().replace("+00:00", "Z")
        if self.successor:
            described["successor"] = self.successor
        return described


class LifecycleError(ValueError):
    """A lifecycle option the generator cannot turn into headers (it names the service or method)."""


def _instant(where: str, field: str, text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise LifecycleError(f"{where}: lifecycle.{field} {text!r} is not an RFC 3339 date-time "
                             "(e.g. 2026-12-01T00:00:00Z)") from None
    if value.tzinfo is None:
        raise LifecycleError(f"{where}: lifecycle.{field} {text!r} needs a time zone (e.g. Z)")
    return value.astimezone(UTC)


def _deprecation(where: str, option: lifecycle_pb2.Lifecycle) -> Deprecation | None:
    if option.unversioned:
        if option.deprecated_since or option.sunset or option.migration_url or option.successor:
            raise LifecycleError(f"{where}: an unversioned method carries no other lifecycle field")
        return None
    if not option.deprecated_since:
        raise LifecycleError(f"{where}: lifecycle.deprecated_since is required (or unversioned: true)")
    if not option.migration_url:
        raise LifecycleError(f"{where}: lifecycle.migration_url is required: the Link header names the notes")
    since = _instant(where, "deprecated_since", option.deprecated_since)
    sunset = _instant(where, "sunset", option.sunset) if option.sunset else None
    if sunset is not None and sunset <= since:
        raise LifecycleError(f"{where}: lifecycle.sunset must come after deprecated_since")
    return Deprecation(since, sunset, option.migration_url, option.successor)


def deprecations(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> dict[str, Deprecation]:
    """gRPC path (`/pkg.Service/Method`) -> its deprecation, for every deprecated method of the contracts.

    The files must have been parsed after this module was imported (as the catalog's and the API
    document's are), so their options carry the lifecycle extensions.
    """
    found: dict[str, Deprecation] = {}
    for file in files:
        for service in file.service:
            full_name = f"{file.package}.{service.name}"
            inherited = None
            if service.options.HasExtension(SERVICE_LIFECYCLE):
                inherited = _deprecation(full_name, service.options.Extensions[SERVICE_LIFECYCLE])
            for method in service.method:
                where = f"{full_name}/{method.name}"
                deprecation = inherited
                if method.options.HasExtension(METHOD_LIFECYCLE):
                    deprecation = _deprecation(where, method.options.Extensions[METHOD_LIFECYCLE])
                if deprecation is not None:
                    found[f"/{where}"] = deprecation
    return found


def read_deprecations(descriptor_set: bytes) -> dict[str, Deprecation]:
    """`deprecations` of a serialized FileDescriptorSet (gen/protomesh.binpb)."""
    return deprecations(descriptor_pb2.FileDescriptorSet.FromString(descriptor_set).file)


def _response_headers(deprecation: Deprecation) -> list[dict[str, Any]]:
    return [{"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
            for key, value in deprecation.headers().items()]


def with_deprecation_headers(routes: list[dict[str, Any]], found: dict[str, Deprecation]) -> list[dict[str, Any]]:
    """Envoy's routes with the deprecation headers on every route of a deprecated method.

    A method's routes are named after its gRPC path (`<path>`, `<path> keyed`, `<path> REST <n>`). A
    deprecated method that has no route of its own (a write that goes by its package's prefix route)
    gets one: a copy of the prefix route matching its path exactly, placed before the prefix route, so
    the headers are on its responses and on no other method's.
    """
    if not found:
        return routes
    # Routes that take every call of one method (a keyed route matches only calls with the header).
    own = {route["match"]["path"] for route in routes
           if "path" in route.get("match", {}) and not route["match"].get("headers")}
    decorated: list[dict[str, Any]] = []
    for route in routes:
        prefix = route.get("match", {}).get("prefix", "")
        if prefix.startswith("/") and prefix.endswith(".") and "route" in route:
            for path in sorted(p for p in found if p.startswith(prefix) and p not in own):
                exact = copy.deepcopy(route)
                exact.update(name=path, match={"path": path}, response_headers_to_add=_response_headers(found[path]))
                decorated.append(exact)
        deprecation = found.get(str(route.get("name", "")).split(" ")[0])
        if deprecation is not None:
            route = {**route, "response_headers_to_add": _response_headers(deprecation)}
        decorated.append(route)
    return decorated


def openapi_fields(deprecation: Deprecation) -> dict[str, Any]:
    """What a deprecated operation adds to its OpenAPI object."""
    return {"deprecated": True, "x-lifecycle": deprecation.describe()}


def openapi_headers(deprecation: Deprecation) -> dict[str, Any]:
    """The deprecation headers as an OpenAPI response's `headers`, each with its value as an example."""
    described = {
        DEPRECATION_HEADER: "RFC 9745: when this operation was deprecated, `@` and Unix seconds.",
        SUNSET_HEADER: "RFC 8594: when this operation stops being served (an HTTP-date).",
        LINK_HEADER: "The migration notes (rel=\"deprecation\", rel=\"sunset\").",
    }
    return {name.capitalize(): {"description": described[name], "schema": {"type": "string", "examples": [value]}}
            for name, value in deprecation.headers().items()}
