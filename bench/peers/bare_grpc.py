"""The peer of the runtime: a bare grpc.aio server running the same GetAgent handler, nothing else.

It runs on uvloop, as a chassis replica does (chassis.server.run_process), so the comparison measures
the chassis and not the event loop; `--loop asyncio` runs it on asyncio's default loop instead.

    python -m bench.peers.bare_grpc --port 50999
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import grpc

from bench.peers.handler import lookup
from bench.peers.serving import serve_until_stopped
from protomesh.agent.v1 import agent_service_pb2_grpc


class BareAgentServicer(agent_service_pb2_grpc.AgentServiceServicer):
    """Only GetAgent, from memory."""

    async def GetAgent(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        response = lookup(request)
        if response is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"agent {request.agent_id!r} not found")
        return response


async def main(port: int) -> None:
    """Serve until SIGTERM/SIGINT."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    agent_service_pb2_grpc.add_AgentServiceServicer_to_server(BareAgentServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await serve_until_stopped(server, port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(main(args.port))
    else:
        asyncio.run(main(args.port))
