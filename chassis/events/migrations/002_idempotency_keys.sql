-- Idempotency keys of writes (AIP-155 request_id, or the Idempotency-Key header over REST): the key is
-- claimed in the write's own transaction, so a write and its key commit or roll back together; a
-- repeat within the window (chassis.idempotency.WINDOW) is answered with the recorded response.
CREATE TABLE idempotency_keys (
    method text NOT NULL,
    key text NOT NULL,
    request_hash bytea NOT NULL,
    -- The serialized response message; NULL until the write has answered (or if it never could).
    response bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (method, key)
);
-- The expiry sweep deletes by age.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
