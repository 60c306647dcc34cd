"""What the contracts declare about caching: the `(protomesh.options.v1.cache)` option of each method."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import MethodDescriptor

from protomesh.options.v1 import cache_pb2

if TYPE_CHECKING:
    from google.protobuf.internal.extension_dict import _ExtensionFieldDescriptor

CACHE_OPTION = cast("_ExtensionFieldDescriptor[descriptor_pb2.MethodOptions, cache_pb2.Cache]", cache_pb2.cache)
"""`(protomesh.options.v1.cache)` on a method."""

MAX_TTL_SECONDS = 3600.0
"""The longest TTL a contract may declare: the bound on staleness should an invalidation be lost."""


class CacheDeclarationError(ValueError):
    """A contract declares caching where it cannot hold (a write, a stream, no TTL)."""


@dataclass(frozen=True)
class CacheRule:
    """How one read is cached (from its contract)."""

    method: str
    """gRPC path, ``/protomesh.agent.v1.AgentService/GetAgent``."""
    ttl: float
    """Seconds a kept answer may be given again."""
    varies_by_principal: bool
    """One answer per principal rather than per organization."""
    client_max_age: float
    """Seconds an HTTP client may reuse the answer without revalidating (0: `no-cache`)."""

    @property
    def cache_control(self) -> str:
        """The `Cache-Control` answers carry. `private` always: the answer is the caller's organization's (or
        the caller's own), so a shared HTTP cache between client and gateway must never give it to another."""
        if self.client_max_age > 0:
            return f"private, max-age={int(self.client_max_age)}"
        return "private, no-cache"


def _seconds(duration: object) -> float:
    return float(getattr(duration, "seconds", 0)) + float(getattr(duration, "nanos", 0)) / 1e9


def rule_of(method: MethodDescriptor) -> CacheRule | None:
    """The method's cache rule, None without the option; CacheDeclarationError if it cannot be cached."""
    options = method.GetOptions()
    if not options.HasExtension(CACHE_OPTION):
        return None
    declared = options.Extensions[CACHE_OPTION]
    path = f"/{method.containing_service.full_name}/{method.name}"
    if options.idempotency_level != descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS:
        raise CacheDeclarationError(f"{path} declares a cache but is not a read (idempotency_level NO_SIDE_EFFECTS)")
    if method.client_streaming or method.server_streaming:
        raise CacheDeclarationError(f"{path} declares a cache but streams; only unary reads are cached")
    ttl = _seconds(declared.ttl)
    if not 0 < ttl <= MAX_TTL_SECONDS:
        raise CacheDeclarationError(f"{path}: cache ttl must be above 0 and at most {MAX_TTL_SECONDS:g}s, got {ttl:g}s")
    max_age = _seconds(declared.client_max_age)
    if not 0 <= max_age <= ttl:
        raise CacheDeclarationError(f"{path}: cache client_max_age must be between 0 and the ttl ({ttl:g}s)")
    return CacheRule(path, ttl, declared.varies_by_principal, max_age)


@functools.cache
def method_rule(method: str) -> CacheRule | None:
    """The cache rule of a gRPC path (``/pkg.Service/Method``), read from the default pool once."""
    service, _, name = method.strip("/").partition("/")
    try:
        descriptor = descriptor_pool.Default().FindServiceByName(service).methods_by_name[name]
    except KeyError:
        return None
    return rule_of(descriptor)


@functools.cache
def cached_methods(grpc_services: tuple[str, ...]) -> tuple[CacheRule, ...]:
    """Every cached read of these gRPC services (a replica with none needs no cache and no fence)."""
    rules = []
    pool = descriptor_pool.Default()
    for service in grpc_services:
        try:
            descriptor = pool.FindServiceByName(service)
        except KeyError:
            continue
        rules += [rule for method in descriptor.methods if (rule := rule_of(method)) is not None]
    return tuple(rules)
