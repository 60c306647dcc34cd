"""One notification replica: `python -m services.notification` (settings from the environment)."""

import chassis

chassis.main("services.notification")
