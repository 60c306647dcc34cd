"""The durable engine: a checkpointing interpreter, leases, timers, compensations."""
