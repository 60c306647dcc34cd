"""The integration service's HTTP session: aiohttp with a resolver that checks every name it resolves.

Imported by services.integration.clients.base.Shared when the first HTTP-based client needs the
session, so that aiohttp is loaded only then.
"""

from __future__ import annotations

import socket

import aiohttp
import aiohttp.abc

from services.integration.targets import TargetGuard


class _GuardedResolver(aiohttp.abc.AbstractResolver):
    """aiohttp's resolver, checking what it resolves: the connection then goes to exactly the addresses
    that were checked, so a name that changes its answer between a client's check and the connection
    (DNS rebinding) is refused too. Addresses in URLs bypass resolvers; clients check those themselves."""

    def __init__(self, guard: TargetGuard) -> None:
        self.guard = guard

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[aiohttp.abc.ResolveResult]:
        addresses = await self.guard.check(host, port, "config")
        return [{"hostname": host, "host": a, "port": port, "proto": 0, "flags": socket.AI_NUMERICHOST,
                 "family": socket.AF_INET6 if ":" in a else socket.AF_INET} for a in addresses]

    async def close(self) -> None:
        """Nothing held."""


def guarded_session(guard: TargetGuard) -> aiohttp.ClientSession:
    """The HTTP session of the service's clients: no cookie jar (one integration's cookies must never
    reach another's requests), no proxy from the environment, names resolved through the guard."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=_GuardedResolver(guard)),
                                 cookie_jar=aiohttp.DummyCookieJar(), raise_for_status=False, trust_env=False)
