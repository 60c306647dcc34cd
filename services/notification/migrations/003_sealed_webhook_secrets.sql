-- Webhook secrets at rest: AES-256-GCM (chassis.crypto) instead of plain text. Stored as the
-- ciphertext (with its tag), the 96-bit nonce drawn for that encryption and the id (a fingerprint)
-- of the key; the subscription's id is the associated data, so a ciphertext moved to another row
-- does not decrypt.
--
-- SQL cannot seal existing secrets (the key is not, and must not be, in the database), so this
-- migration moves no data: it refuses to run while any subscription still holds a plain-text
-- secret, rather than drop it silently. No such row exists outside a development database made
-- before this migration; there, delete those subscriptions (they are recreated with the same
-- request after the upgrade) and start the service again.
DO $$
DECLARE
    plain integer;
BEGIN
    SELECT count(*) INTO plain FROM subscriptions WHERE webhook_secret <> '';
    IF plain > 0 THEN
        RAISE EXCEPTION 'notification migration 003 (sealed webhook secrets): % subscription(s) hold a webhook '
                        'secret in plain text, which SQL cannot encrypt', plain
            USING HINT = 'delete them (DELETE FROM notification.subscriptions WHERE webhook_secret <> '''') and '
                         'recreate them once the service has started';
    END IF;
END
$$;

ALTER TABLE subscriptions
    ADD COLUMN webhook_secret_ciphertext bytea,
    ADD COLUMN webhook_secret_nonce      bytea
        CHECK (webhook_secret_nonce IS NULL OR length(webhook_secret_nonce) = 12),
    ADD COLUMN webhook_secret_key_id     text,
    ADD CONSTRAINT subscriptions_webhook_secret_complete CHECK (
        (webhook_secret_ciphertext IS NULL) = (webhook_secret_nonce IS NULL)
        AND (webhook_secret_ciphertext IS NULL) = (webhook_secret_key_id IS NULL)),
    -- Every webhook signs its requests, so it has a secret; an email subscription has none.
    ADD CONSTRAINT subscriptions_webhook_has_secret CHECK (
        (channel = 'WEBHOOK') = (webhook_secret_ciphertext IS NOT NULL)),
    DROP COLUMN webhook_secret;
