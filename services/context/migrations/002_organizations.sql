-- Tenancy (issue 12, docs/authorization.md): every context belongs to an organization, the identity
-- organization id of the principal that created it; its layers and usage counters are its organization's.
-- Rows from before move to the bootstrap organization: its id from identity.organizations when the
-- identity schema shares this database and this role may read it, else 00000000-0000-4000-8000-000000000001 (the fixed id
-- the identity bootstrap gives it, services/identity/bootstrap.py). In the mesh every service has a role of its own that cannot even look into the
-- identity schema (chassis/tooling/bootstrap.py), and to_regclass() raises rather than answers NULL there:
-- hence the privilege checks, one IF each (PL/pgSQL does not promise to stop an AND at its first false operand).
ALTER TABLE contexts ADD COLUMN organization_id text;
ALTER TABLE context_layers ADD COLUMN organization_id text;
ALTER TABLE context_usage ADD COLUMN organization_id text;
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
    bootstrap := coalesce(bootstrap, '00000000-0000-4000-8000-000000000001');
    UPDATE contexts SET organization_id = bootstrap;
    UPDATE context_layers SET organization_id = bootstrap;
    UPDATE context_usage SET organization_id = bootstrap;
END
$$;
ALTER TABLE contexts ALTER COLUMN organization_id SET NOT NULL,
    ADD CONSTRAINT contexts_organization_set CHECK (organization_id <> '');
ALTER TABLE context_layers ALTER COLUMN organization_id SET NOT NULL,
    ADD CONSTRAINT context_layers_organization_set CHECK (organization_id <> '');
ALTER TABLE context_usage ALTER COLUMN organization_id SET NOT NULL,
    ADD CONSTRAINT context_usage_organization_set CHECK (organization_id <> '');

-- A layer is in its context's organization, enforced by the database: the foreign key names both.
ALTER TABLE contexts ADD CONSTRAINT contexts_id_organization_key UNIQUE (id, organization_id);
ALTER TABLE context_layers DROP CONSTRAINT context_layers_context_id_fkey;
ALTER TABLE context_layers ADD CONSTRAINT context_layers_context_organization_fkey
    FOREIGN KEY (context_id, organization_id) REFERENCES contexts (id, organization_id) ON DELETE CASCADE;

-- Lists and filters start with the caller's organization (a platform admin's cross-organization list
-- is rare and may sort). Layers are found through their context (context_layers_position_key).
DROP INDEX contexts_newest_first;
CREATE INDEX contexts_newest_first ON contexts (organization_id, created_at DESC, id DESC);
DROP INDEX contexts_type;
CREATE INDEX contexts_type ON contexts (organization_id, type);
DROP INDEX contexts_owner;
CREATE INDEX contexts_owner ON contexts (organization_id, owner);
-- The organization's summary and trends; context_usage_hour stays for the pruning job (every organization).
CREATE INDEX context_usage_organization_hour ON context_usage (organization_id, hour);
