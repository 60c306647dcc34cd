"""One agent replica: `python -m services.agent` (settings from the environment)."""

import chassis

chassis.main("services.agent")
