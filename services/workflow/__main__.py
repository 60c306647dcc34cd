"""One workflow replica: `python -m services.workflow` (settings from the environment)."""

import chassis

chassis.main("services.workflow")
