"""The server half of the "bare stack" peer: a bare grpc.aio server doing GetAgent's PostgreSQL read, no chassis.

It answers only AgentService.GetAgent, behind an Envoy that carries the gateway's own token
verification, transcoder and upstream mTLS and nothing else (bench.bare_gateway builds its config).
What it does per call is what the agent replica's handler does, without the chassis around it:

- the caller: the `x-protomesh-claims` metadata Envoy's jwt_authn forwards after verifying the
  token, parsed by the same cached parser the replica's interceptor uses (chassis.identity);
- the read: the same SQL (`AgentStore.get_agent`, tenancy filter included), driver and pool
  (`chassis.db.open_pool`, sized by DB_POOL_MIN/DB_POOL_MAX like a replica's and the FastAPI peer's);
- the answer: the same message built by the same function (`agent_message`).

mTLS as a replica: the server presents a certificate the mesh's CA issued for the agent service and
requires the client's (Envoy's), checked against the same CA. uvloop, as uvicorn picks for the
FastAPI peer when it is installed. No interceptor, no tracing, no metrics, no log line per call.

    DATABASE_URL=... python -m bench.peers.bare_stack --port 50999 --cert C --key K --ca CA
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

import grpc

from bench.peers.serving import serve_until_stopped
from chassis import db
from chassis.identity import CLAIMS_HEADER, InvalidClaims, parse_claims_header, reset_principal, set_principal
from chassis.protos import parse_uuid
from protomesh.agent.v1 import agent_service_pb2, agent_service_pb2_grpc
from services.agent.messages import agent_message
from services.agent.store import AgentStore


def _claims(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == CLAIMS_HEADER:
            return str(value)
    return ""


class BareAgentReader(agent_service_pb2_grpc.AgentServiceServicer):
    """GetAgent from PostgreSQL, nothing else."""

    def __init__(self, store: AgentStore) -> None:
        self._store = store

    async def GetAgent(self, request: agent_service_pb2.GetAgentRequest,
                       context: grpc.aio.ServicerContext) -> Any:
        try:
            principal = parse_claims_header(_claims(context))
        except InvalidClaims:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "no verified caller")
        parsed = parse_uuid(request.agent_id)
        reset = set_principal(principal)  # the store's tenancy filter reads it (chassis.tenant())
        try:
            row = await self._store.get_agent(parsed) if parsed else None
        finally:
            reset_principal(reset)
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"agent {request.agent_id!r} not found")
        return agent_service_pb2.GetAgentResponse(agent=agent_message(row))


async def serve(port: int, credentials: grpc.ServerCredentials) -> None:
    """Serve until SIGTERM/SIGINT."""
    pool = db.open_pool(os.environ["DATABASE_URL"], "agent", min_size=int(os.environ.get("DB_POOL_MIN", "2")),
                        max_size=int(os.environ.get("DB_POOL_MAX", "10")),
                        timeout=float(os.environ.get("DB_ACQUIRE_TIMEOUT_SECONDS", "5")))
    await pool.open(wait=True)
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    agent_service_pb2_grpc.add_AgentServiceServicer_to_server(BareAgentReader(AgentStore(pool)), server)
    server.add_secure_port(f"127.0.0.1:{port}", credentials)
    try:
        await serve_until_stopped(server, port)
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True, help="the server certificate (issued for `agent`)")
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--ca", type=Path, required=True, help="the mesh CA, which client certificates must chain to")
    args = parser.parse_args()
    credentials = grpc.ssl_server_credentials([(args.key.read_bytes(), args.cert.read_bytes())],
                                              root_certificates=args.ca.read_bytes(), require_client_auth=True)
    try:
        import uvloop
    except ImportError:
        run = asyncio.run
    else:
        run = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(args.port, credentials))


if __name__ == "__main__":
    main()
