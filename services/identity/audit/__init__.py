"""The audit trail, the identity service's side: every replica's AuditRecorded events are consumed into
`identity.audit_records` (append-only, migrations/003_audit.sql) and read over AuditService.

The recording side is the chassis' (chassis.audit): see docs/authorization.md, "Audit trail".
"""

from services.identity.audit.consumer import CONSUMER_NAME, audit_consumer
from services.identity.audit.servicer import AuditServicer
from services.identity.audit.store import AuditFilter, AuditStore

__all__ = ["CONSUMER_NAME", "AuditFilter", "AuditServicer", "AuditStore", "audit_consumer"]
