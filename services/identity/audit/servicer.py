"""AuditService: an organization admin reads its organization's trail; a platform admin reads every one."""

from __future__ import annotations

from typing import Any

import grpc

from chassis import Replica
from chassis.authz import tenant
from chassis.errors import NotFound
from chassis.protos import timestamp, to_datetime
from protomesh.identity.v1 import audit_pb2, audit_service_pb2_grpc
from protomesh.identity.v1 import audit_service_pb2 as pb
from services.identity.audit.store import DECISION_NAMES, KIND_NAMES, RECORDS, AuditFilter, AuditStore

NO_ORGANIZATION = "00000000-0000-0000-0000-000000000000"
"""What a caller outside every organization filters by: no record has it (organization ids are identity's)."""
_KINDS = {name: value for value, name in KIND_NAMES.items()}
_DECISIONS = {name: value for value, name in DECISION_NAMES.items()}


class AuditServicer(audit_service_pb2_grpc.AuditServiceServicer):
    """Implements protomesh.identity.v1.AuditService over identity.audit_records.

    The chassis has checked `audit.read`; the organization rule is applied here, in the query: a caller sees
    the records whose organization is its own (a platform admin: any, or the one it names).
    """

    def __init__(self, replica: Replica, deps: Any) -> None:
        self._store = AuditStore(replica.db)

    async def ListAuditRecords(self, request: pb.ListAuditRecordsRequest,
                               context: grpc.aio.ServicerContext) -> pb.ListAuditRecordsResponse:
        flt = AuditFilter(
            organization=_organization(request.organization_id), principal=request.principal,
            action=request.action,
            start=to_datetime(request.start_time) if request.HasField("start_time") else None,
            end=to_datetime(request.end_time) if request.HasField("end_time") else None,
            decision=DECISION_NAMES.get(request.decision, ""),
        )
        page = RECORDS.page(request, flt.fingerprint())
        result = await self._store.list_records(flt, page)
        return pb.ListAuditRecordsResponse(records=[record_message(r) for r in result.items],
                                           page_info=result.page_info())


def _organization(given: str) -> str | None:
    """The organization the list is limited to: the caller's own (naming another is NOT_FOUND, as if it did not
    exist), or for a platform admin the one it names, or None (every organization)."""
    current = tenant()
    if current.cross_org:
        return given or None
    own = current.organization or ""
    if given and given != own:
        raise NotFound("organization", given)
    if not own:
        # A caller outside every organization sees nothing (the records of anonymous calls have none either).
        return NO_ORGANIZATION
    return own


def record_message(row: dict[str, Any]) -> audit_pb2.AuditRecord:
    """A row as the contract's AuditRecord."""
    return audit_pb2.AuditRecord(
        record_id=str(row["record_id"]), time=timestamp(row["occurred_at"]), principal=row["principal"],
        principal_kind=_KINDS.get(row["principal_kind"], audit_pb2.AUDIT_PRINCIPAL_KIND_UNSPECIFIED),  # type: ignore[arg-type]
        api_key_id=row["api_key_id"], client_id=row["client_id"], organization_id=row["organization_id"],
        cross_org=row["cross_org"], action=row["action"], resource=row["resource"],
        decision=_DECISIONS.get(row["decision"], audit_pb2.AUDIT_DECISION_UNSPECIFIED),  # type: ignore[arg-type]
        status=row["status"], trace_id=row["trace_id"], source_address=row["source_address"],
        service=row["service"], instance_id=row["instance_id"],
    )
