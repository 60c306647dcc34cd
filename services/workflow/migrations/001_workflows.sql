-- Definitions: immutable revisions; a new revision is a new row, never an update of an old one.
-- A deleted definition's name may be registered again: its revisions continue from the last number.
CREATE TABLE definitions (
    organization_id  text NOT NULL,
    name             text NOT NULL,
    revision         integer NOT NULL,
    document_version text NOT NULL,
    namespace        text NOT NULL,
    summary          text NOT NULL DEFAULT '',
    source           text NOT NULL,
    task_paths       text[] NOT NULL,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- Deleting a definition hides it; its revisions stay for the executions still running them.
    deleted_at       timestamptz,
    PRIMARY KEY (organization_id, name, revision)
);

-- Executions: the lease (owner, until) says which replica runs one; wake_at is its durable timer,
-- compared with the engine's clock (a test clock in tests), never with the database's.
CREATE TABLE executions (
    id                  uuid PRIMARY KEY,
    organization_id     text NOT NULL,
    definition_name     text NOT NULL,
    revision            integer NOT NULL,
    status              text NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED',
                                                       'TERMINATED', 'COMPENSATING', 'NEEDS_ATTENTION')),
    input               jsonb NOT NULL DEFAULT '{}',
    output              jsonb,
    error               jsonb,
    compensated         boolean NOT NULL DEFAULT false,
    cancel_requested    boolean NOT NULL DEFAULT false,
    waiting             text NOT NULL DEFAULT '',
    waiting_for         text,
    wake_at             timestamptz,
    lease_owner         text,
    lease_until         timestamptz,
    parent_execution_id uuid,
    traceparent         text NOT NULL DEFAULT '',
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    ended_at            timestamptz
);
CREATE INDEX executions_runnable ON executions (wake_at) WHERE status IN ('PENDING', 'RUNNING', 'COMPENSATING');
CREATE INDEX executions_newest_first ON executions (organization_id, created_at DESC, id DESC);
CREATE INDEX executions_by_definition ON executions (organization_id, definition_name, created_at);

-- Steps: the checkpoint of every task attempt (and the history). A replica resuming an execution
-- replays SUCCEEDED steps from here instead of running them again. `attempt_key` is the chain of
-- enclosing retry attempts ("1", "2.1"); superseded steps (a RetryExecution) stay as history only.
CREATE TABLE steps (
    id            bigserial PRIMARY KEY,
    execution_id  uuid NOT NULL REFERENCES executions ON DELETE CASCADE,
    path          text NOT NULL,
    kind          text NOT NULL,
    attempt_key   text NOT NULL,
    attempt       integer NOT NULL,
    status        text NOT NULL CHECK (status IN ('RUNNING', 'SUCCEEDED', 'FAILED')),
    compensation  boolean NOT NULL DEFAULT false,
    compensable   boolean NOT NULL DEFAULT false,
    input         jsonb,
    output        jsonb,
    context       jsonb,
    error         jsonb,
    wake_at       timestamptz,
    superseded    boolean NOT NULL DEFAULT false,
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    completed_seq bigint,
    -- The task ended the workflow (`then: end`, inside it too): a replay skipping it must end as well.
    ended         boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX steps_checkpoint ON steps (execution_id, path, attempt_key) WHERE NOT superseded;
CREATE SEQUENCE steps_completed_seq;

-- Signals (SignalExecution, or a domain event a `listen` waits for), consumed once by one step.
CREATE TABLE signals (
    id           uuid PRIMARY KEY,
    execution_id uuid NOT NULL REFERENCES executions ON DELETE CASCADE,
    type         text NOT NULL,
    data         jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    consumed_by  text
);
CREATE INDEX signals_open ON signals (execution_id, type) WHERE consumed_by IS NULL;
