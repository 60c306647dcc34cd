-- A domain event wakes the executions of its organization whose `listen` waits for its type.
CREATE INDEX executions_waiting_for ON executions (organization_id, waiting_for) WHERE waiting_for IS NOT NULL;
