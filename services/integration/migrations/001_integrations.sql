-- Registered integrations. Credentials are only ever stored encrypted: AES-256-GCM ciphertext
-- (with its tag), the 96-bit nonce drawn for that encryption, and the id (a fingerprint) of the key.
-- credential_keys keeps the names of the credentials (never values) so responses can list them.
CREATE TABLE integrations (
    id                     uuid PRIMARY KEY,
    name                   text NOT NULL,
    kind                   text NOT NULL
                           CHECK (kind IN ('http', 'postgres', 'smtp', 'local_storage', 's3', 'nats')),
    description            text NOT NULL DEFAULT '',
    config                 jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    credentials_ciphertext bytea,
    credentials_nonce      bytea CHECK (credentials_nonce IS NULL OR length(credentials_nonce) = 12),
    credentials_key_id     text,
    credential_keys        text[] NOT NULL DEFAULT '{}',
    enabled                boolean NOT NULL DEFAULT true,
    labels                 jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    -- The last probe (health check or test) of the external system.
    probe_kind             text CHECK (probe_kind IN ('health', 'test')),
    probe_ok               boolean,
    probe_detail           text,
    probe_latency_ms       double precision,
    probed_at              timestamptz,
    version                bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT integrations_credentials_complete CHECK (
        (credentials_ciphertext IS NULL) = (credentials_nonce IS NULL)
        AND (credentials_ciphertext IS NULL) = (credentials_key_id IS NULL))
);
-- Names are unique regardless of case, so "Stripe" and "stripe" cannot both exist.
CREATE UNIQUE INDEX integrations_name_key ON integrations (lower(name));
CREATE INDEX integrations_newest_first ON integrations (created_at DESC, id DESC);
CREATE INDEX integrations_kind ON integrations (kind);
