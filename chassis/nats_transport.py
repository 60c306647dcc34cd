"""Load nats-py without aiohttp when the replica's NATS URLs need no websocket.

nats-py imports aiohttp at the top of `nats.aio.transport`, only for its websocket transport
(`ws://` / `wss://` server URLs). The mesh connects over `nats://` / `tls://`, and aiohttp costs a
replica ~11 MB RSS, so a replica's entry point (services/__init__.py) loads nats-py with aiohttp
hidden from that one import; nats-py then keeps its TCP transport and the websocket one stays
unavailable. The hiding ends with the import: whatever imports aiohttp afterwards gets it as usual
(identity's HTTP listener, chassis.registry's Consul client under CONSUL_HTTP_ADDR).

A replica configured with a websocket NATS URL loads nats-py as it is.
"""

from __future__ import annotations

import importlib
import os
import sys

WEBSOCKET_SCHEMES = ("ws://", "wss://")


def wants_websocket(urls: str) -> bool:
    """Whether any of the comma-separated NATS URLs is a websocket one."""
    return any(url.strip().lower().startswith(WEBSOCKET_SCHEMES) for url in urls.split(","))


def load_nats_without_websocket(urls: str | None = None) -> None:
    """Import nats-py's transports without aiohttp, unless it is loaded already or a websocket URL is configured.

    `urls` defaults to NATS_URL from the environment.
    """
    if "nats.aio.transport" in sys.modules or "aiohttp" in sys.modules:
        return
    if wants_websocket(os.environ.get("NATS_URL", "") if urls is None else urls):
        return
    # A None entry makes `import aiohttp` raise ImportError, which nats-py's transport module handles.
    sys.modules["aiohttp"] = None  # type: ignore[assignment]
    try:
        importlib.import_module("nats.aio.transport")
    finally:
        if sys.modules.get("aiohttp", True) is None:
            del sys.modules["aiohttp"]
