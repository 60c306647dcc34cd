"""Run one notification service replica: `python -m services.notification` (settings from the environment)."""

import asyncio

import chassis
from services.notification.app import build

if __name__ == "__main__":
    asyncio.run(chassis.run(build(), chassis.Settings.from_env("notification")))
