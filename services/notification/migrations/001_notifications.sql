-- Subscriptions: which events (types, subject glob) go to which channel.
CREATE TABLE subscriptions (
    id               uuid PRIMARY KEY,
    name             text NOT NULL,
    event_types      text[] NOT NULL,
    subject_filter   text NOT NULL DEFAULT '',
    channel          text NOT NULL CHECK (channel IN ('EMAIL', 'WEBHOOK')),
    email_to         text[] NOT NULL DEFAULT '{}',
    subject_template text NOT NULL DEFAULT '',
    webhook_url      text NOT NULL DEFAULT '',
    -- Never returned by the API (only whether it is set).
    webhook_secret   text NOT NULL DEFAULT '',
    enabled          boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX subscriptions_name_key ON subscriptions (lower(name));
CREATE INDEX subscriptions_newest_first ON subscriptions (created_at DESC, id DESC);
-- Matching looks up the patterns an event type can match (exact name and its wildcards) with &&.
CREATE INDEX subscriptions_event_types ON subscriptions USING gin (event_types) WHERE enabled;

-- One row per (subscription, event): the id is derived from both, and the unique key makes a
-- redelivered event insert nothing. No foreign key: notifications outlive their subscription.
CREATE TABLE notifications (
    id                uuid PRIMARY KEY,
    subscription_id   uuid NOT NULL,
    subscription_name text NOT NULL,
    event_id          text NOT NULL,
    event_type        text NOT NULL,
    event_subject     text NOT NULL DEFAULT '',
    event_source      text NOT NULL DEFAULT '',
    event_time        timestamptz NOT NULL,
    event_data        jsonb NOT NULL DEFAULT '{}',
    state             text NOT NULL DEFAULT 'PENDING'
                      CHECK (state IN ('PENDING', 'DELIVERING', 'RETRYING', 'DELIVERED', 'FAILED')),
    delivery          integer NOT NULL DEFAULT 1,
    attempt_count     integer NOT NULL DEFAULT 0,
    max_attempts      integer NOT NULL,
    last_error        text NOT NULL DEFAULT '',
    -- When the next attempt is due (PENDING/RETRYING); the sweeper queues again a delivery
    -- overdue by more than its grace period (its task was lost).
    next_attempt_at   timestamptz,
    -- Until when the DELIVERING attempt belongs to its worker; after that it counts as abandoned.
    lease_until       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX notifications_newest_first ON notifications (created_at DESC, id DESC);
CREATE INDEX notifications_subscription ON notifications (subscription_id, created_at DESC);
CREATE INDEX notifications_unfinished ON notifications (GREATEST(next_attempt_at, lease_until))
    WHERE state IN ('PENDING', 'DELIVERING', 'RETRYING');

CREATE TABLE delivery_attempts (
    notification_id uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    delivery        integer NOT NULL,
    attempt         integer NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('IN_PROGRESS', 'DELIVERED', 'RETRYABLE_FAILURE',
                                                     'PERMANENT_FAILURE', 'ABANDONED')),
    channel         text NOT NULL,
    target          text NOT NULL DEFAULT '',
    status_code     integer NOT NULL DEFAULT 0,
    error           text NOT NULL DEFAULT '',
    worker          text NOT NULL DEFAULT '',
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    PRIMARY KEY (notification_id, delivery, attempt)
);
