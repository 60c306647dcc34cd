"""Run one agent service replica: `python -m services.agent` (settings from the environment)."""

import asyncio

import chassis
from services.agent.app import build

if __name__ == "__main__":
    asyncio.run(chassis.run(build(), chassis.Settings.from_env("agent")))
