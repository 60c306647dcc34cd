"""What every bare peer server does around its handler: start, say where it listens, serve until asked to stop."""

from __future__ import annotations

import asyncio
import signal

import grpc


async def serve_until_stopped(server: grpc.aio.Server, port: int) -> None:
    """Start `server`, print the line the benchmark waits for, and stop it (1 s grace) on SIGTERM/SIGINT."""
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"serving on 127.0.0.1:{port}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop(1)
