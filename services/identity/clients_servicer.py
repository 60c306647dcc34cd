"""ClientService: OAuth clients (service accounts, external apps), registered with a secret shown once.

Who may call is the contract's (clients.read / clients.write, checked by the chassis). Tenancy
(services.identity.tenancy): a caller sees and manages its organization's clients only (a platform admin
any); another organization's client is NOT_FOUND. A service account (client_credentials) belongs to an
organization and acts in it with its registered roles, which exist in roles.proto and hold no permission
its registrant lacks.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import grpc

from chassis import Replica
from chassis.errors import FieldViolation, InvalidArgument, NotFound
from chassis.idempotency import idempotent
from chassis.identity import require_principal
from chassis.protos import timestamp
from protomesh.identity.v1 import client_service_pb2, client_service_pb2_grpc, identity_pb2
from services.identity import tenancy
from services.identity.messages import role_name, role_number
from services.identity.oauth.clients import CLIENTS
from services.identity.oauth.models import Client
from services.identity.oauth.provider import OAuthProvider

logger = logging.getLogger(__name__)
pb = client_service_pb2


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


def _registered_organization(request: pb.RegisterClientRequest) -> str | None:
    """The organization a new client belongs to: the one named (the caller's own, unless a platform admin) or
    the caller's. Only a platform admin registers a client of no organization, and never a service account:
    client_credentials tokens act in the client's organization, so one without any could act nowhere."""
    if request.organization_id or not tenancy.tenant().cross_org:
        return str(tenancy.own_organization(request.organization_id))
    organization = require_principal().organization or None
    if organization is None and "client_credentials" in request.grant_types:
        raise InvalidArgument([FieldViolation("organization_id", "required for a client_credentials client: a "
                                              "service account acts in one organization")])
    return organization


class ClientServicer(client_service_pb2_grpc.ClientServiceServicer):
    """Implements protomesh.identity.v1.ClientService within the caller's organization."""

    def __init__(self, replica: Replica, deps: HasOAuth) -> None:
        self._replica = replica
        self._clients = deps.oauth.clients

    async def _managed(self, client_id: str) -> Client:
        client = await self._clients.get(client_id, tenancy.organization_filter())
        # Another organization's client is as unknown as a missing one: its existence is not disclosed.
        if client is None:
            raise NotFound("client", client_id)
        return client

    async def ListClients(self, request: pb.ListClientsRequest, context: grpc.aio.ServicerContext[Any, Any],
                          ) -> pb.ListClientsResponse:
        in_org = tenancy.organization_filter()
        if request.organization_id:  # a filter within what the caller sees: another organization is unknown
            in_org = tenancy.own_organization(request.organization_id)
        organization = str(in_org) if in_org else None
        flt = (organization or "", request.include_disabled)
        page = await self._clients.list(organization, request.include_disabled, CLIENTS.page(request, flt))
        return pb.ListClientsResponse(clients=[client_message(c) for c in page.items], page_info=page.page_info())

    @idempotent(pb.RegisterClientResponse)
    async def RegisterClient(self, request: pb.RegisterClientRequest, context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.RegisterClientResponse:
        principal = require_principal()
        organization = _registered_organization(request)
        roles = [role_name(r) for r in request.roles]
        tenancy.check_roles_grantable(roles, field="roles")
        client, secret = await self._clients.register(
            name=request.name, organization_id=organization, grant_types=request.grant_types,
            redirect_uris=request.redirect_uris, scopes=request.scopes,
            roles=roles, public=request.public, created_by=principal.subject)
        logger.info("oauth client registered", extra={"client_id": client.client_id, "public": client.public})
        return pb.RegisterClientResponse(client=client_message(client), client_secret=secret or "")

    async def GetClient(self, request: pb.GetClientRequest, context: grpc.aio.ServicerContext[Any, Any],
                        ) -> pb.GetClientResponse:
        return pb.GetClientResponse(client=client_message(await self._managed(request.client_id)))

    async def DisableClient(self, request: pb.DisableClientRequest, context: grpc.aio.ServicerContext[Any, Any],
                            ) -> pb.DisableClientResponse:
        await self._managed(request.client_id)
        client = await self._clients.disable(request.client_id, tenancy.organization_filter())
        if client is None:
            raise NotFound("client", request.client_id)
        logger.info("oauth client disabled", extra={"client_id": client.client_id})
        return pb.DisableClientResponse(client=client_message(client))
