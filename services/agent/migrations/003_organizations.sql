-- Tenancy (issue 12, docs/authorization.md): every agent and execution belongs to an organization,
-- the identity organization id of the principal that registered it (an execution: its agent's).
-- Rows from before move to the bootstrap organization: its id from identity.organizations when the
-- identity schema shares this database and this role may read it, else 00000000-0000-4000-8000-000000000001 (the fixed id
-- the identity bootstrap gives it, services/identity/bootstrap.py). In the mesh every service has a role of its own that cannot even look into the
-- identity schema (chassis/tooling/bootstrap.py), and to_regclass() raises rather than answers NULL there:
-- hence the privilege checks, one IF each (PL/pgSQL does not promise to stop an AND at its first false operand).
ALTER TABLE agents ADD COLUMN organization_id text;
ALTER TABLE executions ADD COLUMN organization_id text;
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
    UPDATE agents SET organization_id = bootstrap;
    UPDATE executions SET organization_id = bootstrap;
END
$$;
ALTER TABLE agents ALTER COLUMN organization_id SET NOT NULL,
    ADD CONSTRAINT agents_organization_set CHECK (organization_id <> '');
ALTER TABLE executions ALTER COLUMN organization_id SET NOT NULL,
    ADD CONSTRAINT executions_organization_set CHECK (organization_id <> '');

-- An execution is in its agent's organization, enforced by the database: the foreign key names both.
ALTER TABLE agents ADD CONSTRAINT agents_id_organization_key UNIQUE (id, organization_id);
ALTER TABLE executions DROP CONSTRAINT executions_agent_id_fkey;
ALTER TABLE executions ADD CONSTRAINT executions_agent_organization_fkey
    FOREIGN KEY (agent_id, organization_id) REFERENCES agents (id, organization_id) ON DELETE CASCADE;

-- Names are unique within an organization (regardless of case): a taken name must not tell one
-- organization what another has registered.
DROP INDEX agents_name_key;
CREATE UNIQUE INDEX agents_name_key ON agents (organization_id, lower(name));
-- Every list and filter of agents starts with the caller's organization (a platform admin's
-- cross-organization list is rare and may sort).
DROP INDEX agents_newest_first;
CREATE INDEX agents_newest_first ON agents (organization_id, created_at DESC, id DESC);
DROP INDEX agents_type;
CREATE INDEX agents_type ON agents (organization_id, type);
-- Executions are found by id (primary key) or by agent (executions_agent_newest_first), each then
-- checked against the organization: no index of their own on it.
