"""The benchmark's scenarios; each adds rows (and target lines) to the run's context."""
