"""SigningKeyService: the token signing keys (public halves) and their rotation, for platform admins."""

from __future__ import annotations

import logging
from typing import Any

import grpc

from chassis import Replica
from chassis.errors import PermissionDenied
from chassis.idempotency import idempotent
from chassis.identity import require_principal
from chassis.protos import timestamp, to_struct
from protomesh.identity.v1 import identity_pb2, signing_key_service_pb2, signing_key_service_pb2_grpc
from services.identity.clients_servicer import HasOAuth
from services.identity.oauth.keys import KeyRow, SigningKeys, by_state

logger = logging.getLogger(__name__)
pb = signing_key_service_pb2
_STATES = {"next": identity_pb2.SIGNING_KEY_STATE_NEXT, "current": identity_pb2.SIGNING_KEY_STATE_CURRENT,
           "retiring": identity_pb2.SIGNING_KEY_STATE_RETIRING}


def key_message(row: KeyRow, access_token_ttl: int) -> identity_pb2.SigningKey:
    return identity_pb2.SigningKey(
        kid=row.kid, alg=row.alg, state=_STATES[row.state], public_jwk=to_struct(row.public_jwk),
        create_time=timestamp(row.created_at), activate_time=timestamp(row.activated_at),
        retire_time=timestamp(row.retired_at), expire_time=timestamp(row.expires_at(access_token_ttl)))


def _require_platform_admin() -> None:
    if not require_principal().platform_admin:
        raise PermissionDenied("signing keys are managed by platform admins")


class SigningKeyServicer(signing_key_service_pb2_grpc.SigningKeyServiceServicer):
    """Implements protomesh.identity.v1.SigningKeyService."""

    def __init__(self, replica: Replica, deps: HasOAuth) -> None:
        self._replica = replica
        self._keys: SigningKeys = deps.oauth.keys
        self._ttl = deps.oauth.config.access_token_ttl

    async def ListSigningKeys(self, request: pb.ListSigningKeysRequest, context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.ListSigningKeysResponse:
        _require_platform_admin()
        published = await self._keys.published()
        return pb.ListSigningKeysResponse(signing_keys=[key_message(r, self._ttl) for r in published])

    @idempotent(pb.RotateSigningKeyResponse)
    async def RotateSigningKey(self, request: pb.RotateSigningKeyRequest,
                               context: grpc.aio.ServicerContext[Any, Any]) -> pb.RotateSigningKeyResponse:
        _require_platform_admin()
        rows = await self._keys.rotate()
        answer = pb.RotateSigningKeyResponse()
        for state, field in (("current", answer.current), ("next", answer.next), ("retiring", answer.retiring)):
            row = by_state(rows, state)
            if row is not None:
                field.CopyFrom(key_message(row, self._ttl))
        return answer
