"""One field replica: `python -m services.field` (settings from the environment)."""

import chassis

chassis.main("services.field")
