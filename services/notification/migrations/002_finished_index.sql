-- The sweeper deletes finished notifications past the retention period, oldest first.
CREATE INDEX notifications_finished ON notifications (updated_at) WHERE state IN ('DELIVERED', 'FAILED');
