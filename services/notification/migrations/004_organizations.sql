-- Tenancy (issue 12, docs/authorization.md): every subscription belongs to an organization (the
-- identity organization id of the principal that created it), and every notification to its
-- subscription's, which is also its event's: a subscription is only ever matched with events of its
-- own organization.
--
-- Rows from before move to the bootstrap organization: its id from identity.organizations when this
-- role may read it, else 00000000-0000-4000-8000-000000000001 (the fixed id the identity bootstrap
-- gives it, services/identity/bootstrap.py). In the mesh every service
-- has a role of its own that cannot even look into the identity schema (chassis/tooling/bootstrap.py),
-- and to_regclass() raises rather than answers NULL there: hence the privilege checks, one IF each
-- (PL/pgSQL does not promise to stop an AND at its first false operand).
ALTER TABLE subscriptions ADD COLUMN organization_id text;
ALTER TABLE notifications ADD COLUMN organization_id text;
DO $$
DECLARE
    bootstrap text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'identity') THEN
        IF has_schema_privilege('identity', 'USAGE') THEN
            IF to_regclass('identity.organizations') IS NOT NULL THEN
                IF has_table_privilege('identity.organizations', 'SELECT') THEN
                    EXECUTE 'SELECT id::text FROM identity.organizations WHERE lower(name) = ''local'''
                        INTO bootstrap;
                END IF;
            END IF;
        END IF;
    END IF;
    UPDATE subscriptions SET organization_id = coalesce(bootstrap, '00000000-0000-4000-8000-000000000001');
    -- A notification outlives its subscription (no foreign key): all of them go where their
    -- subscriptions went, the same organization.
    UPDATE notifications SET organization_id = coalesce(bootstrap, '00000000-0000-4000-8000-000000000001');
END
$$;
ALTER TABLE subscriptions ALTER COLUMN organization_id SET NOT NULL,
    ADD CONSTRAINT subscriptions_organization_set CHECK (organization_id <> '');
ALTER TABLE notifications ALTER COLUMN organization_id SET NOT NULL,
    ADD CONSTRAINT notifications_organization_set CHECK (organization_id <> '');

-- Names are unique within an organization (regardless of case): a taken name must not tell one
-- organization what another has subscribed to, nor keep it from using the same name.
DROP INDEX subscriptions_name_key;
CREATE UNIQUE INDEX subscriptions_name_key ON subscriptions (organization_id, lower(name));
-- Lists and counts start with the caller's organization (a platform admin's cross-organization list
-- is rare and may sort).
DROP INDEX subscriptions_newest_first;
CREATE INDEX subscriptions_newest_first ON subscriptions (organization_id, created_at DESC, id DESC);
DROP INDEX notifications_newest_first;
CREATE INDEX notifications_newest_first ON notifications (organization_id, created_at DESC, id DESC);
-- Matching an event: its organization's enabled subscriptions, then the type patterns (the GIN
-- index on event_types stays for the overlap; this one narrows to the organization first).
CREATE INDEX subscriptions_organization_enabled ON subscriptions (organization_id) WHERE enabled;
