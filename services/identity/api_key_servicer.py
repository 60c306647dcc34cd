"""ApiKeyService: an organization's API keys (the secret answered only at creation and rotation).

Tenancy (services.identity.tenancy): a caller sees and manages only its organization's keys (a platform
admin any); a key's scopes are permission names its creator holds, and the key acts in its organization.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import grpc

from chassis import Replica
from chassis.protos import to_datetime
from chassis.resources import Keyset, found, resource_id
from protomesh.identity.v1 import api_key_service_pb2 as pb
from protomesh.identity.v1 import api_key_service_pb2_grpc, identity_pb2
from services.identity import callers, tenancy
from services.identity.apikeys import generate_key
from services.identity.deps import IdentityDeps
from services.identity.messages import api_key_message

logger = logging.getLogger(__name__)

_KEYS = Keyset.newest_first("api_keys")
# pragma: allowlist nextline secret - status names of API keys, not keys
_STATUS = {identity_pb2.API_KEY_STATUS_ACTIVE: "active", identity_pb2.API_KEY_STATUS_ROTATED: "rotated",
           # pragma: allowlist nextline secret - status names of API keys, not keys
           identity_pb2.API_KEY_STATUS_REVOKED: "revoked", identity_pb2.API_KEY_STATUS_EXPIRED: "expired"}


class ApiKeyServicer(api_key_service_pb2_grpc.ApiKeyServiceServicer):
    """Implements protomesh.identity.v1.ApiKeyService over PostgreSQL.

    CreateApiKey and RotateApiKey are not @idempotent on purpose: a recorded answer would keep the
    key's secret in the database to replay it (see the contract).
    """

    def __init__(self, replica: Replica, deps: IdentityDeps) -> None:
        self._replica = replica
        self._keys = deps.api_keys
        self._pepper = deps.pepper
        self._verifier = deps.verifier
        self._default_overlap = deps.settings.apikey_rotation_overlap

    async def ListApiKeys(self, request: pb.ListApiKeysRequest,
                          context: grpc.aio.ServicerContext) -> pb.ListApiKeysResponse:
        org_id = tenancy.own_organization(request.organization_id)
        status = _STATUS.get(request.status, "")
        page = _KEYS.page(request, {"organization_id": str(org_id), "status": status})
        result = await self._keys.list_keys(org_id, status, page)
        return pb.ListApiKeysResponse(api_keys=[api_key_message(r) for r in result.items],
                                      page_info=result.page_info())

    async def CreateApiKey(self, request: pb.CreateApiKeyRequest,
                           context: grpc.aio.ServicerContext) -> pb.CreateApiKeyResponse:
        org_id = tenancy.own_organization(request.organization_id)
        scopes = list(dict.fromkeys(request.scopes))
        tenancy.check_scopes_grantable(scopes)
        expires_at = None
        if request.HasField("ttl"):
            expires_at = datetime.now(UTC) + request.ttl.ToTimedelta()
        elif request.HasField("expire_time"):
            expires_at = to_datetime(request.expire_time)
        key = generate_key(self._pepper)
        row = await self._keys.create(
            organization_id=org_id, name=request.name, key=key, scopes=scopes,
            created_by=callers.actor(), expires_at=expires_at,
            rate_limit_per_second=request.rate_limit_per_second, rate_limit_burst=request.rate_limit_burst,
        )
        logger.info("API key created", extra={"api_key_id": str(row.id), "api_key_prefix": row.prefix})
        return pb.CreateApiKeyResponse(api_key=api_key_message(row), secret=key.key)

    async def GetApiKey(self, request: pb.GetApiKeyRequest, context: grpc.aio.ServicerContext) -> pb.GetApiKeyResponse:
        key_id = resource_id("API key", request.api_key_id, field="api_key_id")
        row = found(await self._keys.get(key_id, tenancy.organization_filter()), "API key", request.api_key_id)
        return pb.GetApiKeyResponse(api_key=api_key_message(row))

    async def RevokeApiKey(self, request: pb.RevokeApiKeyRequest,
                           context: grpc.aio.ServicerContext) -> pb.RevokeApiKeyResponse:
        key_id = resource_id("API key", request.api_key_id, field="api_key_id")
        row = found(await self._keys.revoke(key_id, tenancy.organization_filter(), callers.actor()),
                    "API key", request.api_key_id)
        self._verifier.forget(row.prefix)  # this replica at once; the others within their cache time
        logger.info("API key revoked", extra={"api_key_id": str(row.id), "api_key_prefix": row.prefix})
        return pb.RevokeApiKeyResponse(api_key=api_key_message(row))

    async def RotateApiKey(self, request: pb.RotateApiKeyRequest,
                           context: grpc.aio.ServicerContext) -> pb.RotateApiKeyResponse:
        key_id = resource_id("API key", request.api_key_id, field="api_key_id")
        overlap = request.overlap.ToTimedelta() if request.HasField("overlap") else self._default_overlap
        in_org = tenancy.organization_filter()
        # The successor keeps the key's scopes: whoever rotates must be able to grant them (a narrow key
        # holding apikeys.write must not mint a fresh copy of a broader one).
        current = found(await self._keys.get(key_id, in_org), "API key", request.api_key_id)
        tenancy.check_scopes_grantable(current.scopes, strict=False)
        key = generate_key(self._pepper)
        rotated = found(await self._keys.rotate(key_id, in_org, key, overlap, callers.actor()),
                        "API key", request.api_key_id)
        new, old = rotated
        self._verifier.forget(old.prefix)
        logger.info("API key rotated", extra={"api_key_id": str(new.id), "rotated_from": str(old.id)})
        return pb.RotateApiKeyResponse(api_key=api_key_message(new), secret=key.key, previous=api_key_message(old))
