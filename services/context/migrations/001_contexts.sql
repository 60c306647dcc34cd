-- Contexts, their ordered layers, and hourly usage counters.
--
-- Changes from the seed's schema: server-generated UUID ids; status constrained; an owner and an
-- access list; optional expiry; a version per context and per layer for optimistic concurrency;
-- exact sizes in bytes (size_mb is derived, DECIMAL megabytes would round small layers away);
-- layers carry a unique name and a unique position per context; usage is counted per hour.
CREATE TABLE contexts (
    id               uuid PRIMARY KEY,
    name             text NOT NULL,
    type             text NOT NULL,
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived', 'expired')),
    owner            text NOT NULL,
    shared_with      text[] NOT NULL DEFAULT '{}',
    metadata         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    tags             text[] NOT NULL DEFAULT '{}',
    -- Kept exact by every layer write, in the same transaction, under this row's lock.
    layer_count      integer NOT NULL DEFAULT 0 CHECK (layer_count >= 0),
    size_bytes       bigint NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),
    access_count     bigint NOT NULL DEFAULT 0 CHECK (access_count >= 0),
    version          bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    expires_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    last_accessed_at timestamptz
);
CREATE INDEX contexts_newest_first ON contexts (created_at DESC, id DESC);
CREATE INDEX contexts_type ON contexts (type);
CREATE INDEX contexts_owner ON contexts (owner);
CREATE INDEX contexts_tags ON contexts USING gin (tags);
-- What the cleanup job scans: contexts that will expire and have not been expired yet.
CREATE INDEX contexts_expiring ON contexts (expires_at) WHERE expires_at IS NOT NULL AND status <> 'expired';

CREATE TABLE context_layers (
    id          uuid PRIMARY KEY,
    context_id  uuid NOT NULL REFERENCES contexts (id) ON DELETE CASCADE,
    name        text NOT NULL,
    layer_type  text NOT NULL,
    position    integer NOT NULL CHECK (position >= 1),
    data        jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    size_bytes  integer NOT NULL CHECK (size_bytes >= 0),
    version     bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT context_layers_position_key UNIQUE (context_id, position),
    CONSTRAINT context_layers_name_key UNIQUE (context_id, name)
);

-- Reads and writes per context per hour. No foreign key on purpose: system-wide trends stay
-- true after a context is deleted; the cleanup job drops rows older than the retention.
CREATE TABLE context_usage (
    context_id   uuid NOT NULL,
    context_type text NOT NULL,
    hour         timestamptz NOT NULL CHECK (hour = date_trunc('hour', hour, 'UTC')),
    reads        bigint NOT NULL DEFAULT 0 CHECK (reads >= 0),
    writes       bigint NOT NULL DEFAULT 0 CHECK (writes >= 0),
    PRIMARY KEY (context_id, hour)
);
CREATE INDEX context_usage_hour ON context_usage (hour);
