"""One integration replica: `python -m services.integration` (settings from the environment)."""

import chassis

chassis.main("services.integration")
