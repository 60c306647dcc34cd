"""In-process service tests: see chassis.testing (written next)."""
