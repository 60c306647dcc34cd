"""Callers of the in-process field service, each in a fresh organization."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2

from chassis.identity import Principal
from chassis.testing import InProcess
from protomesh.field.v1 import field_pb2 as f
from protomesh.field.v1 import field_service_pb2 as pb
from protomesh.field.v1.field_service_pb2_grpc import FieldServiceStub


def struct(data: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(data)
    return message


def member_of(organization: str, role: str = "member") -> Principal:
    return Principal(subject=f"user-{uuid.uuid4().hex[:8]}", kind="user", organization=organization,
                     roles=frozenset({role}))


@dataclass
class Org:
    """A member of a fresh organization, with a farm."""

    stub: FieldServiceStub
    organization: str
    farm: f.Farm

    async def field(self, name: str, boundary: dict[str, Any] | None = None, **extra: Any) -> f.Field:
        request = pb.CreateFieldRequest(farm_id=self.farm.farm_id, name=name, **extra)
        if boundary is not None:
            request.boundary.CopyFrom(struct(boundary))
        return (await self.stub.CreateField(request)).field


async def new_org(service: InProcess[Any], role: str = "member") -> Org:
    organization = f"org-{uuid.uuid4().hex[:12]}"
    stub = service.stub(FieldServiceStub, principal=member_of(organization, role))
    farm = (await stub.CreateFarm(pb.CreateFarmRequest(name="Home farm", timezone="Europe/Amsterdam"))).farm
    return Org(stub, organization, farm)
