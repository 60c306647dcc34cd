"""Run one integration service replica: `python -m services.integration` (settings from the environment)."""

import asyncio

import chassis
from services.integration.app import build

if __name__ == "__main__":
    asyncio.run(chassis.run(build(), chassis.Settings.from_env("integration")))
