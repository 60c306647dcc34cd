"""One context replica: `python -m services.context` (settings from the environment)."""

import chassis

chassis.main("services.context")
