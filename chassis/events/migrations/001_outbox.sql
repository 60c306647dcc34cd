-- Chassis-owned tables of the events runtime, in every service's own schema.

-- Events written in the same transaction as the change they describe; the relay publishes them.
CREATE TABLE outbox (
    seq bigserial PRIMARY KEY,
    event_id text NOT NULL UNIQUE,
    event_type text NOT NULL,
    nats_subject text NOT NULL,
    envelope bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    last_error text
);
-- The relay scans only what is still to send.
CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;

-- Events a consumer has handled, written in the handler's transaction: a redelivery is skipped.
CREATE TABLE processed_events (
    consumer text NOT NULL,
    event_id text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
