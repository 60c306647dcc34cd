-- The audit trail (docs/authorization.md, "Audit trail"): one row per write or denied call of any service,
-- consumed from the AuditRecorded events every replica writes into its outbox (services/identity/audit/).
-- Append-only: rows are inserted and read, never changed or removed. UPDATE, DELETE and TRUNCATE are
-- revoked from everyone, the service's own role (the table's owner) included, and a trigger refuses
-- them anyway, for a role that still holds the privilege (a superuser, or an owner re-granting it).

CREATE TABLE audit_records (
    seq             bigserial PRIMARY KEY,
    -- The AuditRecorded event's id: a redelivered event meets its row and is not recorded twice.
    record_id       uuid NOT NULL UNIQUE,
    occurred_at     timestamptz NOT NULL,
    principal       text NOT NULL DEFAULT '',
    principal_kind  text NOT NULL,
    api_key_id      text NOT NULL DEFAULT '',
    client_id       text NOT NULL DEFAULT '',
    organization_id text NOT NULL DEFAULT '',
    cross_org       boolean NOT NULL DEFAULT false,
    action          text NOT NULL,
    resource        text NOT NULL DEFAULT '',
    decision        text NOT NULL CHECK (decision IN ('allowed', 'denied')),
    status          text NOT NULL,
    trace_id        text NOT NULL DEFAULT '',
    source_address  text NOT NULL DEFAULT '',
    service         text NOT NULL DEFAULT '',
    instance_id     text NOT NULL DEFAULT '',
    received_at     timestamptz NOT NULL DEFAULT now()
);
-- The list reads newest first within an organization (an admin's view) or across all (a platform admin's),
-- optionally for one principal or one action.
CREATE INDEX audit_records_org_time ON audit_records (organization_id, occurred_at DESC, seq DESC);
CREATE INDEX audit_records_time ON audit_records (occurred_at DESC, seq DESC);
CREATE INDEX audit_records_principal ON audit_records (principal, occurred_at DESC);
CREATE INDEX audit_records_action ON audit_records (action, occurred_at DESC);

CREATE FUNCTION audit_records_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on audit_records is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_records_no_update BEFORE UPDATE OR DELETE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION audit_records_append_only();
CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
    FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only();

REVOKE UPDATE, DELETE, TRUNCATE ON audit_records FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_records FROM CURRENT_USER;
