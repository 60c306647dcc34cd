-- Agents and their executions. Status BUSY/IDLE is derived from executions, never stored.
CREATE TABLE agents (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    type         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    capabilities text[] NOT NULL DEFAULT '{}',
    config       jsonb NOT NULL DEFAULT '{}',
    labels       jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- Names are unique regardless of case.
CREATE UNIQUE INDEX agents_name_key ON agents (lower(name));
CREATE INDEX agents_newest_first ON agents (created_at DESC, id DESC);
CREATE INDEX agents_type ON agents (type);
CREATE INDEX agents_capabilities ON agents USING gin (capabilities);

CREATE TABLE executions (
    id          uuid PRIMARY KEY,
    agent_id    uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    state       text NOT NULL CHECK (state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'STOPPED')),
    input       jsonb NOT NULL DEFAULT '{}',
    output      jsonb,
    error       text NOT NULL DEFAULT '',
    progress    double precision NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
    runner      text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz
);
-- At most one pending or running execution per agent, enforced by the database under races.
CREATE UNIQUE INDEX executions_one_active_per_agent ON executions (agent_id)
    WHERE state IN ('PENDING', 'RUNNING');
CREATE INDEX executions_agent_newest_first ON executions (agent_id, created_at DESC);
