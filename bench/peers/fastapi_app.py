"""The peer of the gateway path: what a seed author would have written, FastAPI + uvicorn reading an agent.

The same read as the agent service's GetAgent: the same SQL (`AgentStore.get_agent`), the same
driver (psycopg 3), the same pool (`chassis.db.open_pool`, sized by DB_POOL_MIN/DB_POOL_MAX like a
replica), a pydantic response model of the same JSON as the gateway's answer (proto field names).

Authenticated as an app of this kind would be: the bearer token is verified on every request
(signature against the identity service's JWKS, issuer, audience, expiry with the gateway's 30 s
leeway) with joserfc, the library the identity service signs with; the key set is fetched from
JWKS_URL at start and again after JWKS_CACHE_SECONDS (the gateway's jwt_authn cache), never per
request. Tenancy as in a replica: the caller's organization comes from the verified token's claims
(its payload segment, parsed like the x-protomesh-claims header Envoy forwards, with the same cached
parser) and the store's query filters by it, so both sides read the same rows with the same SQL.

    DATABASE_URL=postgresql://... JWKS_URL=http://127.0.0.1:8080/oauth2/jwks ISSUER=http://127.0.0.1:8080 \
        uvicorn bench.peers.fastapi_app:app --port 8000 --workers 2
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from fastapi import FastAPI, Header, HTTPException
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
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


AUDIENCE = "protomesh"
ALGORITHMS = ["RS256"]
CLOCK_SKEW_SECONDS = 30
"""The gateway's jwt_authn leeway (chassis.tooling.gateway_auth.GatewayAuth.clock_skew_seconds)."""


class TokenVerifier:
    """Verifies bearer tokens against a cached JWKS; the key set is refetched when older than `cache_seconds`."""

    def __init__(self, jwks_url: str, issuer: str, cache_seconds: float) -> None:
        self.jwks_url = jwks_url
        self.cache_seconds = cache_seconds
        self.keys = KeySet([])
        self.fetched_at = 0.0
        self.claims = JWTClaimsRegistry(leeway=CLOCK_SKEW_SECONDS, iss={"essential": True, "value": issuer},
                                        aud={"essential": True, "value": AUDIENCE}, exp={"essential": True})

    def _fetch(self) -> None:
        with urllib.request.urlopen(self.jwks_url, timeout=5) as reply:
            self.keys = KeySet.import_key_set(json.loads(reply.read()))

    async def refresh(self) -> None:
        """Fetch the key set if it is older than the cache allows (off the event loop, once for all callers)."""
        if time.monotonic() - self.fetched_at >= self.cache_seconds:
            first = not self.fetched_at
            self.fetched_at = time.monotonic()
            try:
                await asyncio.to_thread(self._fetch)
            except (OSError, ValueError):
                if first:
                    raise

    def verify(self, token: str) -> bool:
        try:
            decoded = jwt.decode(token, self.keys, algorithms=ALGORITHMS)
            self.claims.validate(decoded.claims)
        except (JoseError, ValueError):
            return False
        return True


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = db.open_pool(os.environ["DATABASE_URL"], "agent",
                        min_size=int(os.environ.get("DB_POOL_MIN", "2")),
                        max_size=int(os.environ.get("DB_POOL_MAX", "10")),
                        timeout=float(os.environ.get("DB_ACQUIRE_TIMEOUT_SECONDS", "5")))
    await pool.open(wait=True)
    app.state.store = AgentStore(pool)
    app.state.verifier = TokenVerifier(os.environ["JWKS_URL"], os.environ["ISSUER"],
                                       float(os.environ.get("JWKS_CACHE_SECONDS", "30")))
    await app.state.verifier.refresh()
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(title="agent read (benchmark peer)", lifespan=lifespan)


@app.get("/v1/agents/{agent_id}", response_model=GetAgentResponse)
async def get_agent(agent_id: str, authorization: str = Header(default="")) -> GetAgentResponse:
    _, _, token = authorization.partition("Bearer ")
    verifier: TokenVerifier = app.state.verifier
    await verifier.refresh()
    try:
        principal = parse_claims_header(token.split(".")[1]) if verifier.verify(token) else None
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
