-- Users, organizations, memberships, invitations and API keys. No secret is stored in clear:
-- passwords are argon2id hashes (PHC strings), API keys HMAC-SHA256 under a pepper that is not in the
-- database (services/identity/apikeys.py), so a copy of the database alone checks no key.

CREATE TABLE organizations (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    display_name  text NOT NULL,
    created_by    text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX organizations_name_key ON organizations (lower(name));
CREATE INDEX organizations_oldest_first ON organizations (created_at, id);

CREATE TABLE users (
    id                   uuid PRIMARY KEY,
    -- Stored stripped and lower-cased (the service normalises it); the CHECK keeps every writer honest.
    email                text NOT NULL CHECK (email = lower(btrim(email)) AND email <> ''),
    display_name         text NOT NULL,
    status               text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    password_hash        text NOT NULL,          -- argon2id, PHC string format
    platform_admin       boolean NOT NULL DEFAULT false,
    -- Refresh tokens (and sessions) issued before this are refused: set on disable and on a password
    -- change, read by the OAuth provider's refresh grant.
    sessions_valid_after timestamptz NOT NULL DEFAULT '1970-01-01 00:00:00+00',
    created_by           text NOT NULL DEFAULT '',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    password_changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_oldest_first ON users (created_at, id);

CREATE TABLE memberships (
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);
CREATE INDEX memberships_oldest_first ON memberships (organization_id, created_at, user_id);

CREATE TABLE invitations (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    email           text NOT NULL CHECK (email = lower(btrim(email)) AND email <> ''),
    role            text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'cancelled', 'expired')),
    invited_by      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    closed_at       timestamptz
);
-- One pending invitation per email and organization; a new invite marks a pending one past its expiry
-- `expired` first (a pending row past expires_at is reported as expired anyway).
CREATE UNIQUE INDEX invitations_one_pending ON invitations (organization_id, email) WHERE status = 'pending';
CREATE INDEX invitations_newest_first ON invitations (organization_id, created_at DESC, id DESC);

CREATE TABLE api_keys (
    id                    uuid PRIMARY KEY,
    organization_id       uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    name                  text NOT NULL,
    -- The public part of `pmk_<prefix>_<secret>`: finds the row; the secret is checked by its hash.
    prefix                text NOT NULL,
    secret_hash           bytea NOT NULL,        -- HMAC-SHA256(pepper, whole key)
    scopes                text[] NOT NULL,
    created_by            text NOT NULL DEFAULT '',
    created_at            timestamptz NOT NULL DEFAULT now(),
    expires_at            timestamptz,           -- NULL: never; a rotation sets it to the overlap's end
    last_used_at          timestamptz,
    revoked_at            timestamptz,
    rotated_from          uuid REFERENCES api_keys ON DELETE SET NULL,
    rotated_at            timestamptz,           -- when a rotation replaced this key
    rate_limit_per_second double precision NOT NULL DEFAULT 0 CHECK (rate_limit_per_second >= 0),
    rate_limit_burst      integer NOT NULL DEFAULT 0 CHECK (rate_limit_burst >= 0)
);
CREATE UNIQUE INDEX api_keys_prefix_key ON api_keys (prefix);
CREATE INDEX api_keys_newest_first ON api_keys (organization_id, created_at DESC, id DESC);
