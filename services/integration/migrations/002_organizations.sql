-- Tenancy (issue 12, docs/authorization.md): every integration, and so its sealed credentials, belongs
-- to an organization: the identity organization id of the principal that registered it.
--
-- Rows from before move to the bootstrap organization: its id from identity.organizations when this
-- role may read it, else 00000000-0000-4000-8000-000000000001 (the fixed id the identity bootstrap
-- gives it, services/identity/bootstrap.py). In the mesh every service
-- has a role of its own that cannot even look into the identity schema (chassis/tooling/bootstrap.py),
-- and to_regclass() raises rather than answers NULL there: hence the privilege checks, one IF each
-- (PL/pgSQL does not promise to stop an AND at its first false operand).
ALTER TABLE integrations ADD COLUMN organization_id text;
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
    UPDATE integrations SET organization_id = coalesce(bootstrap, '00000000-0000-4000-8000-000000000001');
END
$$;
ALTER TABLE integrations ALTER COLUMN organization_id SET NOT NULL,
    ADD CONSTRAINT integrations_organization_set CHECK (organization_id <> '');

-- Names are unique within an organization (regardless of case): a taken name must not tell one
-- organization what another has registered, nor keep it from using the same name.
DROP INDEX integrations_name_key;
CREATE UNIQUE INDEX integrations_name_key ON integrations (organization_id, lower(name));
-- Every list, filter and count starts with the caller's organization (a platform admin's
-- cross-organization list is rare and may sort).
DROP INDEX integrations_newest_first;
CREATE INDEX integrations_newest_first ON integrations (organization_id, created_at DESC, id DESC);
DROP INDEX integrations_kind;
CREATE INDEX integrations_kind ON integrations (organization_id, kind);
