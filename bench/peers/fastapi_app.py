"""The peer of the gateway path: what a seed author would have written, FastAPI + uvicorn reading an agent.

The same read as the agent service's GetAgent: the same SQL (`AgentStore.get_agent`), the same
driver (psycopg 3), the same pool (`chassis.db.open_pool`, sized by DB_POOL_MIN/DB_POOL_MAX like a
replica), a pydantic response model of the same JSON as the gateway's answer (proto field names).

Tenancy as in a replica: the caller's organization comes from the bearer token's claims (the JWT's
payload segment, parsed like the x-protomesh-claims header Envoy forwards, with the same cached
parser) and the store's query filters by it, so both sides read the same rows with the same SQL. The
signature is not checked here: on our side Envoy checks it, and its cost is in Envoy's CPU, not the
replica's (the peer is the lighter for it).

    DATABASE_URL=postgresql://... uvicorn bench.peers.fastapi_app:app --port 8000 --workers 2
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel

from chassis import db
from chassis.identity import InvalidClaims, parse_claims_header, reset_principal, set_principal
from chassis.protos import parse_uuid
from services.agent.store import AgentRow, AgentStore


class Agent(BaseModel):
    agent_id: str
    name: str
    type: str
    description: str
    capabilities: list[str]
    config: dict
    labels: dict[str, str]
    status: str
    current_execution_id: str
    create_time: str
    update_time: str
    organization_id: str


class GetAgentResponse(BaseModel):
    agent: Agent


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _agent(row: AgentRow) -> Agent:
    return Agent(
        agent_id=str(row.id), name=row.name, type=row.type, description=row.description,
        capabilities=row.capabilities, config=row.config, labels=row.labels,
        status="AGENT_STATUS_BUSY" if row.current_execution_id else "AGENT_STATUS_IDLE",
        current_execution_id=str(row.current_execution_id or ""),
        create_time=_rfc3339(row.created_at), update_time=_rfc3339(row.updated_at),
        organization_id=row.organization_id,
    )


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = db.open_pool(os.environ["DATABASE_URL"], "agent",
                        min_size=int(os.environ.get("DB_POOL_MIN", "2")),
                        max_size=int(os.environ.get("DB_POOL_MAX", "10")),
                        timeout=float(os.environ.get("DB_ACQUIRE_TIMEOUT_SECONDS", "5")))
    await pool.open(wait=True)
    app.state.store = AgentStore(pool)
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(title="agent read (benchmark peer)", lifespan=lifespan)


@app.get("/v1/agents/{agent_id}", response_model=GetAgentResponse)
async def get_agent(agent_id: str, authorization: str = Header(default="")) -> GetAgentResponse:
    _, _, token = authorization.partition("Bearer ")
    try:
        principal = parse_claims_header(token.split(".")[1]) if token.count(".") == 2 else None
    except InvalidClaims:
        principal = None
    if principal is None:
        raise HTTPException(status_code=401, detail="a bearer token is required")
    parsed = parse_uuid(agent_id)
    # The principal the store's tenancy filter reads (chassis.tenant()), as the replica's interceptor sets it.
    reset = set_principal(principal)
    try:
        row = await app.state.store.get_agent(parsed) if parsed else None
    finally:
        reset_principal(reset)
    if row is None:
        raise HTTPException(status_code=404, detail=f"agent {agent_id!r} not found")
    return GetAgentResponse(agent=_agent(row))
