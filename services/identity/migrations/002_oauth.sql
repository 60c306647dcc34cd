-- The OAuth 2.1 / OpenID Connect provider: signing keys, clients, codes, refresh token families,
-- device codes, revoked access tokens and failed-login counters. No secret is stored in clear:
-- client secrets are argon2id hashes, codes and tokens SHA-256 hashes, private keys AES-GCM sealed.

-- Signing keys (docs/identity.md): `next` is published and does not sign yet, `current` signs,
-- `retiring` is published until the last token it signed has expired, then the row is deleted.
CREATE TABLE signing_keys (
    kid               text PRIMARY KEY,
    alg               text NOT NULL DEFAULT 'RS256',
    state             text NOT NULL CHECK (state IN ('next', 'current', 'retiring')),
    public_jwk        jsonb NOT NULL,
    -- The private JWK sealed with the identity cipher (chassis.crypto), bound to the kid.
    private_sealed    bytea NOT NULL,
    private_nonce     bytea NOT NULL,
    cipher_key_id     text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    activated_at      timestamptz,
    retired_at        timestamptz
);
-- At most one key signs and at most one waits to sign: every replica agrees on both.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((true)) WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys ((true)) WHERE state = 'next';

CREATE TABLE oauth_clients (
    client_id         text PRIMARY KEY,
    name              text NOT NULL,
    organization_id   uuid,
    grant_types       text[] NOT NULL,
    redirect_uris     text[] NOT NULL DEFAULT '{}',
    scopes            text[] NOT NULL DEFAULT '{}',
    roles             text[] NOT NULL DEFAULT '{}',
    public            boolean NOT NULL,
    secret_hash       text,               -- argon2id; NULL for a public client
    created_by        text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    disabled_at       timestamptz,
    CHECK (public = (secret_hash IS NULL))
);

CREATE TABLE authorization_codes (
    code_hash         bytea PRIMARY KEY,  -- SHA-256 of the code
    client_id         text NOT NULL REFERENCES oauth_clients ON DELETE CASCADE,
    user_id           uuid NOT NULL,
    organization_id   uuid,
    redirect_uri      text NOT NULL,
    scope             text NOT NULL DEFAULT '',
    nonce             text,
    code_challenge    text NOT NULL,
    code_challenge_method text NOT NULL CHECK (code_challenge_method = 'S256'),
    auth_time         timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    used_at           timestamptz,
    -- The refresh family the code's exchange started: a replayed code revokes it (RFC 6749 4.1.2).
    family_id         uuid
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);

-- Refresh tokens rotate on every use: each use marks the row rotated and inserts its successor in
-- the same family; presenting a rotated token revokes the whole family (reuse detection).
CREATE TABLE refresh_tokens (
    token_hash        bytea PRIMARY KEY,  -- SHA-256 of the token
    family_id         uuid NOT NULL,
    family_created_at timestamptz NOT NULL,
    client_id         text NOT NULL REFERENCES oauth_clients ON DELETE CASCADE,
    user_id           uuid NOT NULL,
    organization_id   uuid,
    scope             text NOT NULL DEFAULT '',
    auth_time         timestamptz NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    rotated_at        timestamptz,
    revoked_at        timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id) WHERE revoked_at IS NULL;

CREATE TABLE device_codes (
    device_code_hash  bytea PRIMARY KEY,  -- SHA-256 of the device code
    user_code         text NOT NULL UNIQUE,
    client_id         text NOT NULL REFERENCES oauth_clients ON DELETE CASCADE,
    scope             text NOT NULL DEFAULT '',
    interval_seconds  integer NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    last_polled_at    timestamptz,
    user_id           uuid,
    organization_id   uuid,
    approved          boolean,            -- NULL while the user has not decided
    decided_at        timestamptz,
    used_at           timestamptz
);
CREATE INDEX device_codes_expiry ON device_codes (expires_at);

-- Access tokens revoked before their expiry (RFC 7009): introspection answers inactive for them.
-- (The gateway verifies signatures only; a revoked access token runs out within its short lifetime.)
CREATE TABLE revoked_access_tokens (
    jti               text PRIMARY KEY,
    expires_at        timestamptz NOT NULL
);

-- Failed logins per account and per address, in one table every replica reads: a fixed window per key.
CREATE TABLE login_failures (
    key               text PRIMARY KEY,   -- 'account:<sha256 of the email>' or 'address:<ip>'
    window_start      timestamptz NOT NULL,
    failures          integer NOT NULL
);
