"""A task worker in a process of its own, for the SIGKILL test: takes a job, reports progress, never finishes.

Usage: python task_worker.py NATS_URL KIND ACK_WAIT_SECONDS
Prints "started <task id> <delivery>" once it runs a job; the test then kills it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys

from chassis.config import Settings
from chassis.events import EventBus, Task, Worker


async def main(nats_url: str, kind: str, ack_wait: float) -> None:
    async def run(payload: object, task: Task) -> None:
        print(f"started {task.id} {task.delivery.delivery_count}", flush=True)
        for step in range(600):  # bounded: a minute at most, far longer than the test waits
            await task.report(step / 600, f"step {step}")
            await asyncio.sleep(0.1)

    settings = Settings(service="taskworker", nats_url=nats_url, instance_id="doomed-worker")
    async with EventBus(settings, None, workers=[Worker([kind], run, ack_wait=ack_wait)]):
        await asyncio.sleep(120)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
