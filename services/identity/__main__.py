"""One identity replica: `python -m services.identity` (settings from the environment)."""

import chassis

chassis.main("services.identity")
