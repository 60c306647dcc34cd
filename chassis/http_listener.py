"""A replica's own HTTP listener, for a service that declares `http=` (e.g. identity's OAuth endpoints).

Some endpoints are HTTP by their standard and cannot be gRPC methods transcoded by Envoy: an OAuth
token endpoint takes a form body and answers RFC 6749 JSON, a login page answers HTML and 302s, and
Envoy's ext_authz (HTTP) calls a plain path. A service serves those from an aiohttp application the
chassis runs next to the gRPC server:

    chassis.Service(..., http=lambda replica, deps: build_http_app(deps))

The chassis builds the application once the lifespan is open (so handlers get the typed deps), serves
it on the replica's host at <SERVICE>_HTTP_PORT or HTTP_PORT (0: a free port), registers the bound port as `http_port`
in the replica's registry metadata (Envoy's generated `<service>_http` cluster is built from it), and
stops it on shutdown before the lifespan closes what its handlers use.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from chassis import tls
from chassis.replica import Replica

if TYPE_CHECKING:
    from aiohttp import web

logger = logging.getLogger(__name__)

HTTP_PORT_META = "http_port"
"""Registry metadata key naming the port of a replica's HTTP listener."""


@contextlib.asynccontextmanager
async def serving_http(replica: Replica, deps: Any) -> AsyncIterator[None]:
    """Serve the service's HTTP application (if it declares one) until the block exits.

    Sets `replica.http_port` to the bound port while it serves.
    """
    factory = replica.service.http
    if factory is None:
        yield
        return
    # aiohttp (~11 MB RSS) is loaded only in a replica that serves HTTP (identity), not in every one.
    from aiohttp import web

    settings = replica.settings
    app: web.Application = factory(replica, deps)
    # No access log: query strings of OAuth endpoints may carry codes and state, which must not be logged.
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        # Over mTLS like the gRPC server when the replica has mesh credentials (Envoy's `<service>_http` cluster).
        mesh_tls = tls.current()
        site = web.TCPSite(runner, settings.grpc_host, settings.http_port, reuse_address=True,
                           ssl_context=mesh_tls.server_ssl_context() if mesh_tls else None)
        try:
            await site.start()
        except OSError as exc:
            raise RuntimeError(f"cannot listen for HTTP on {settings.grpc_host}:{settings.http_port}: "
                               "is the port taken? set <SERVICE>_HTTP_PORT (0 picks a free one)") from exc
        replica.http_port = _bound_port(runner)
        scheme = "https" if mesh_tls else "http"
        logger.info("http listener", extra={"url": f"{scheme}://{settings.grpc_host}:{replica.http_port}/"})
        yield
    finally:
        # Open connections get the shutdown grace to finish their request, as gRPC calls do.
        await runner.shutdown()
        await runner.cleanup()
        replica.http_port = 0


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        # IPv4 (host, port) and IPv6 (host, port, flowinfo, scope) both have the port second.
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the HTTP listener has no bound socket")

