"""Run one context service replica: `python -m services.context` (settings from the environment)."""

import asyncio

import chassis
from services.context.app import build

if __name__ == "__main__":
    asyncio.run(chassis.run(build(), chassis.Settings.from_env("context")))
