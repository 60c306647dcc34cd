"""Where integrations may connect: public addresses, what the operator admits, never the mesh itself.

An integration is configured by API clients, so without a check it would let them reach whatever the
replica can reach: its own PostgreSQL and NATS (with the replica's network position), the cloud
metadata address, services bound to loopback. So every outbound connection is checked where it is made,
after DNS resolution (a name may point anywhere), against three rules in this order:

1. The mesh's own infrastructure (DATABASE_URL, NATS_URL and CONSUL_HTTP_ADDR of this replica) is always
   refused, allow-list or not. When one of them is on a loopback or unspecified address its port is
   refused on every loopback address, since 127.0.0.2 reaches a server bound to 0.0.0.0 too.
2. Public unicast addresses (`ipaddress`'s is_global) are admitted.
3. Anything else (loopback, link-local and the metadata address 169.254.169.254, private networks,
   shared address space, unspecified, multicast, reserved) only when INTEGRATION_ALLOWED_TARGETS admits
   it: comma-separated entries, each an address or CIDR (`10.0.0.0/8`), an address with a port
   (`127.0.0.1:8080`, `[::1]:8080`) or a host name, with or without a port (`mail.internal:25`), which
   admits whatever that configured name resolves to.

Envoy's ports are not known to a replica; they are on loopback or private addresses, refused by rule 3
unless an operator admits them. The host's own non-loopback interface addresses are not enumerated:
they are private addresses too, and an operator who admits their network admits what listens there.

The check is pure (`TargetGuard.verdict`) over the resolved addresses, so refusals are decided before
any packet is sent; clients then connect to exactly the addresses that were checked, where their
library lets them (see each client).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from chassis.config import ConfigError, Settings
from chassis.errors import FieldViolation, InvalidArgument

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

VARIABLE = "INTEGRATION_ALLOWED_TARGETS"
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
SHARED_SPACE = ipaddress.ip_network("100.64.0.0/10")
INFRA_CACHE_SECONDS = 60.0
"""How long the infrastructure's resolved addresses are kept (compose and Kubernetes names can move)."""


class TargetRefused(InvalidArgument):
    """A target the integration may not connect to; names the config field that leads there."""

    def __init__(self, field_path: str, description: str) -> None:
        super().__init__([FieldViolation(field_path, description)])
        self.field = field_path
        self.description = description


@dataclass(frozen=True)
class Allowed:
    """One allow-list entry: a network (an address is a /32 or /128) or a host name, and maybe a port."""

    network: IpNetwork | None = None
    host: str = ""
    port: int | None = None

    def admits(self, host: str, address: IpAddress, port: int) -> bool:
        """Whether a connection to `address` (resolved from the configured `host`) on `port` is admitted."""
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return address.version == self.network.version and address in self.network
        return _name(host) == self.host


@dataclass(frozen=True)
class Infrastructure:
    """A server of the mesh itself, as the replica's settings name it."""

    what: str
    host: str
    port: int


def _name(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _split_port(entry: str) -> tuple[str, int | None]:
    """host and port of `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address (no port)."""
    if entry.startswith("["):
        host, bracket, rest = entry[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("[address] or [address]:port")
        return host, int(rest[1:]) if rest else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, int(port)
    return entry, None


def parse_allowed(raw: str) -> tuple[Allowed, ...]:
    """The entries of INTEGRATION_ALLOWED_TARGETS; ConfigError names the first bad one."""
    entries: list[Allowed] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            if "/" in item:
                entries.append(Allowed(network=ipaddress.ip_network(item.strip("[]"), strict=False)))
                continue
            host, port = _split_port(item)
            if port is not None and not 0 < port < 65536:
                raise ValueError("the port must be 1-65535")
            try:
                entries.append(Allowed(network=ipaddress.ip_network(host), port=port))
            except ValueError:
                if not host or any(c in host for c in " /@?#"):
                    raise ValueError("not an address, CIDR or host name") from None
                entries.append(Allowed(host=_name(host), port=port))
        except ValueError as exc:
            raise ConfigError(f"{VARIABLE}: {item!r} is not an entry ({exc}); use comma-separated addresses, "
                              "CIDRs, host names, each optionally with :port (e.g. 127.0.0.1:8080, "
                              "10.0.0.0/8, [::1]:5432, mail.internal:25)") from None
    return tuple(entries)


def infrastructure(settings: Settings) -> tuple[Infrastructure, ...]:
    """The mesh's own servers this replica uses: its PostgreSQL, NATS and Consul."""
    found: list[Infrastructure] = []

    def add(what: str, url: str, default_port: int) -> None:
        parts = urllib.parse.urlsplit(url if "://" in url else f"//{url}")
        try:
            port = parts.port or default_port
        except ValueError:
            port = default_port
        if parts.hostname:
            found.append(Infrastructure(what, parts.hostname, port))

    if settings.database_url:
        add("PostgreSQL (DATABASE_URL)", settings.database_url, 5432)
    for url in (settings.nats_url or "").split(","):
        if url.strip():
            add("NATS (NATS_URL)", url.strip(), 4222)
    if settings.consul_http_addr:
        add("Consul (CONSUL_HTTP_ADDR)", settings.consul_http_addr, 8500)
    return tuple(found)


def _plain(address: IpAddress) -> IpAddress:
    """An IPv6 address that carries an IPv4 one (mapped, 6to4, Teredo) as that IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        return address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else address)
    return address


def _local(address: IpAddress) -> bool:
    return address.is_loopback or address.is_unspecified


def kind_of(address: IpAddress) -> str | None:
    """What makes an address non-public ("loopback", "link-local"...), or None for a public one."""
    address = _plain(address)
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address in METADATA:
        return "cloud metadata"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.version == 4 and address in SHARED_SPACE:
        return "shared (carrier-grade NAT)"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "reserved"
    return None


async def system_resolve(host: str, port: int) -> list[str]:
    """Every address a name resolves to, for TCP (an address resolves to itself without a lookup)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _addresses(values: Iterable[str]) -> list[IpAddress]:
    # A scope id (fe80::1%eth0) names an interface, not another address.
    return [ipaddress.ip_address(value.split("%", 1)[0]) for value in values]


@dataclass
class TargetGuard:
    """Decides, and enforces at connect time, where this replica's integrations may connect."""

    allowed: tuple[Allowed, ...] = ()
    infrastructure: tuple[Infrastructure, ...] = ()
    resolve: Resolver = system_resolve
    _infra: list[tuple[Infrastructure, set[IpAddress]]] = field(default_factory=list)
    _infra_until: float = 0.0

    @classmethod
    def from_settings(cls, allowed_targets: str, settings: Settings) -> TargetGuard:
        """The guard of a replica: its allow-list setting and its own infrastructure."""
        return cls(parse_allowed(allowed_targets), infrastructure(settings))

    async def _infrastructure(self) -> list[tuple[Infrastructure, set[IpAddress]]]:
        if time.monotonic() < self._infra_until:
            return self._infra
        resolved = []
        for infra in self.infrastructure:
            try:
                addresses = set(_addresses(await asyncio.wait_for(self.resolve(infra.host, infra.port), 5)))
            except (OSError, TimeoutError, ValueError):
                addresses = set()  # unresolvable now: the name itself is still compared
            resolved.append((infra, addresses))
        self._infra, self._infra_until = resolved, time.monotonic() + INFRA_CACHE_SECONDS
        return resolved

    def verdict(self, host: str, port: int, addresses: list[IpAddress],
                infra: list[tuple[Infrastructure, set[IpAddress]]]) -> str | None:
        """Why a connection to host:port (resolved to `addresses`) is refused, or None when admitted. Pure."""
        for own, own_addresses in infra:
            if port != own.port:
                continue
            if _name(host) == _name(own.host):
                return self._infra_message(host, port, own)
            for address in addresses:
                if address in own_addresses or (_local(_plain(address)) and any(_local(a) for a in own_addresses)):
                    return self._infra_message(host, port, own)
        for address in addresses:
            kind = kind_of(address)
            if kind is None or any(entry.admits(host, address, port) for entry in self.allowed):
                continue
            shown = str(address) if _name(host) == str(address) else f"{host} resolves to {address},"
            example = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
            return (f"{shown} a {kind} address: integrations connect only to public addresses unless an operator "
                    f"admits the target in {VARIABLE} (e.g. {example}, a CIDR or a host name)")
        return None

    @staticmethod
    def _infra_message(host: str, port: int, own: Infrastructure) -> str:
        return (f"{host}:{port} is the mesh's own {own.what}: integrations may never connect to it, whatever "
                f"{VARIABLE} admits; point the integration at another server")

    async def check(self, host: str, port: int, field_path: str) -> list[str]:
        """The addresses of host:port to connect to, all admitted; TargetRefused naming `field_path` otherwise.

        A name that does not resolve raises OSError (the caller reports it as unreachable).
        """
        addresses = _addresses(await self.resolve(host, port))
        reason = self.verdict(host, port, addresses, await self._infrastructure())
        if reason is not None:
            raise TargetRefused(field_path, reason)
        return [str(a) for a in addresses]

    async def precheck(self, host: str, port: int, field_path: str, timeout: float = 3.0) -> None:
        """The check as a create or update runs it: refused targets are refused now; a name that does not
        resolve yet passes (it is checked again on every connection)."""
        try:
            await asyncio.wait_for(self.check(host, port, field_path), timeout)
        except (OSError, TimeoutError, UnicodeError):
            return
