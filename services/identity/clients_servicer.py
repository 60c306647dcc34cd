"""ClientService: OAuth clients (service accounts, external apps), registered with a secret shown once."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import grpc

from chassis import Replica
from chassis.errors import NotFound, PermissionDenied
from chassis.idempotency import idempotent
from chassis.identity import Principal, require_principal
from chassis.protos import timestamp
from protomesh.identity.v1 import client_service_pb2, client_service_pb2_grpc, identity_pb2
from services.identity.messages import role_name, role_number
from services.identity.oauth.clients import CLIENTS
from services.identity.oauth.models import Client
from services.identity.oauth.provider import OAuthProvider

logger = logging.getLogger(__name__)
pb = client_service_pb2
MANAGERS = frozenset({"owner", "admin"})
"""Roles that may manage an organization's clients (besides platform admins)."""


class HasOAuth(Protocol):
    @property
    def oauth(self) -> OAuthProvider: ...


def client_message(client: Client) -> identity_pb2.Client:
    """A client as the contract shows it: never its secret or the secret's hash."""
    message = identity_pb2.Client(
        client_id=client.client_id, name=client.name, organization_id=client.organization_id or "",
        grant_types=client.grant_types, redirect_uris=client.redirect_uris, scopes=client.scopes,
        roles=[role_number(r) for r in client.roles], public=client.public,
        disabled=client.disabled_at is not None, created_by=client.created_by,
        create_time=timestamp(client.created_at), disable_time=timestamp(client.disabled_at))
    return message


def _may_manage(principal: Principal, organization_id: str | None) -> bool:
    if principal.platform_admin:
        return True
    return bool(organization_id) and principal.organization == organization_id \
        and bool(principal.roles & MANAGERS)


class ClientServicer(client_service_pb2_grpc.ClientServiceServicer):
    """Implements protomesh.identity.v1.ClientService (owners and admins of the client's organization, or a
    platform admin)."""

    def __init__(self, replica: Replica, deps: HasOAuth) -> None:
        self._replica = replica
        self._clients = deps.oauth.clients

    async def _managed(self, client_id: str) -> Client:
        client = await self._clients.get(client_id)
        # Someone else's client is as unknown as a missing one: its existence is not disclosed.
        if client is None or not _may_manage(require_principal(), client.organization_id):
            raise NotFound("client", client_id)
        return client

    async def ListClients(self, request: pb.ListClientsRequest, context: grpc.aio.ServicerContext[Any, Any],
                          ) -> pb.ListClientsResponse:
        principal = require_principal()
        organization = request.organization_id or (None if principal.platform_admin else principal.organization)
        if not _may_manage(principal, organization) and not (principal.platform_admin and organization is None):
            raise PermissionDenied("listing clients needs the owner or admin role in the organization")
        flt = (organization or "", request.include_disabled)
        page = await self._clients.list(organization, request.include_disabled, CLIENTS.page(request, flt))
        return pb.ListClientsResponse(clients=[client_message(c) for c in page.items], page_info=page.page_info())

    @idempotent(pb.RegisterClientResponse)
    async def RegisterClient(self, request: pb.RegisterClientRequest, context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.RegisterClientResponse:
        principal = require_principal()
        organization = request.organization_id or principal.organization or None
        if not _may_manage(principal, organization):
            raise PermissionDenied("registering a client needs the owner or admin role in its organization")
        client, secret = await self._clients.register(
            name=request.name, organization_id=organization, grant_types=request.grant_types,
            redirect_uris=request.redirect_uris, scopes=request.scopes,
            roles=[role_name(r) for r in request.roles], public=request.public, created_by=principal.subject)
        logger.info("oauth client registered", extra={"client_id": client.client_id, "public": client.public})
        return pb.RegisterClientResponse(client=client_message(client), client_secret=secret or "")

    async def GetClient(self, request: pb.GetClientRequest, context: grpc.aio.ServicerContext[Any, Any],
                        ) -> pb.GetClientResponse:
        return pb.GetClientResponse(client=client_message(await self._managed(request.client_id)))

    async def DisableClient(self, request: pb.DisableClientRequest, context: grpc.aio.ServicerContext[Any, Any],
                            ) -> pb.DisableClientResponse:
        await self._managed(request.client_id)
        client = await self._clients.disable(request.client_id)
        if client is None:
            raise NotFound("client", request.client_id)
        logger.info("oauth client disabled", extra={"client_id": client.client_id})
        return pb.DisableClientResponse(client=client_message(client))
