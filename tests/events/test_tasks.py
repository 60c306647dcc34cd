"""Work-queue tasks: a worker killed with SIGKILL mid-job has its job redelivered and finished by another worker."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import nats

from chassis.config import Settings
from chassis.events import Backoff, DeadLetters, EventBus, Task, Worker, subjects
from chassis.paths import REPO_ROOT
from chassis.tooling.infra.nats import NatsProcess
from protomesh.agent.v1 import events_pb2
from protomesh.events.v1 import envelope_pb2
from tests.events.conftest import eventually

WORKER_SCRIPT = Path(__file__).with_name("task_worker.py")


def settings(nats_url: str, name: str) -> Settings:
    return Settings(service="tasks", nats_url=nats_url, instance_id=name, shutdown_grace_seconds=1.0)


async def test_job_of_a_worker_killed_mid_job_is_redelivered_and_finished_by_another(
    nats_server: NatsProcess,
) -> None:
    kind, ack_wait = "test.long_job", 1.5
    async with EventBus(settings(nats_server.url, "submitter"), None) as submitter:
        task_id = await submitter.tasks.submit(kind, events_pb2.ExecutionStarted(execution_id="x1"), task_id="job-1")
        # Submitting the same id again (a retried request) queues the job once.
        assert await submitter.tasks.submit(kind, events_pb2.ExecutionStarted(execution_id="x1"),
                                            task_id="job-1") == task_id

        doomed = await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER_SCRIPT), nats_server.url, kind, str(ack_wait),
            cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, start_new_session=True)
        try:
            async with submitter.tasks.progress(task_id) as reports:
                line = await asyncio.wait_for(doomed.stdout.readline(), 30)  # type: ignore[union-attr]
                assert line.decode().split() == ["started", task_id, "1"]
                report = await asyncio.wait_for(reports.get(), 10)
                assert (report.task_id, report.kind, report.worker) == (task_id, kind, "doomed-worker")

                finished: list[tuple[str, int, str]] = []

                async def finish(payload: events_pb2.ExecutionStarted, task: Task) -> None:
                    finished.append((task.id, task.delivery.delivery_count, payload.execution_id))

                rescuer = Worker([kind], finish, ack_wait=ack_wait)
                async with EventBus(settings(nats_server.url, "rescuer"), None, workers=[rescuer]):
                    # While the doomed worker heartbeats, its job is not handed to anyone else,
                    # even though it runs longer than ack_wait.
                    await asyncio.sleep(2 * ack_wait)
                    assert finished == []
                    os.kill(doomed.pid, signal.SIGKILL)
                    assert await asyncio.wait_for(doomed.wait(), 10) == -signal.SIGKILL

                    async def rescued() -> bool:
                        return bool(finished)

                    await eventually(rescued, 20, "the job redelivered to the other worker")
                    assert finished == [(task_id, 2, "x1")]
                    js = submitter.nc.jetstream()  # type: ignore[union-attr]

                    async def queue_empty() -> bool:
                        return (await js.stream_info(subjects.TASK_STREAM)).state.messages == 0

                    await eventually(queue_empty, 10, "the finished job removed from the work queue")
        finally:
            if doomed.returncode is None:
                os.kill(doomed.pid, signal.SIGKILL)
                await asyncio.wait_for(doomed.wait(), 10)


async def test_failing_task_is_retried_then_dead_lettered(nats_server: NatsProcess) -> None:
    kind = "test.always_fails"
    tries: list[int] = []

    async def fail(payload: events_pb2.ExecutionFailed, task: Task) -> None:
        tries.append(task.delivery.delivery_count)
        raise RuntimeError(f"cannot run {payload.execution_id}")

    worker = Worker([kind], fail, ack_wait=5, max_deliver=3, backoff=Backoff(initial=0.05, maximum=0.1))
    async with EventBus(settings(nats_server.url, "failing"), None, workers=[worker]) as runtime:
        await runtime.tasks.submit(kind, events_pb2.ExecutionFailed(execution_id="bad"), task_id="doomed-job")
        nc = await nats.connect(nats_server.url)
        try:
            dead = DeadLetters(nc.jetstream())

            async def dead_lettered() -> bool:
                return len(await dead.list()) == 1

            await eventually(dead_lettered, 15, "the failing task in DEAD_LETTERS")
            [stored] = await dead.list(subjects.task_consumer(kind))
            assert (stored.record.reason, stored.record.delivery_count, stored.record.event_id) == (
                envelope_pb2.DEAD_LETTER_REASON_HANDLER_FAILED, 3, "doomed-job")
            assert "RuntimeError: cannot run bad" in stored.record.error
            assert tries == [1, 2, 3]
        finally:
            await nc.close()


async def test_submitting_while_nats_is_away_fails_at_once_and_works_again_after(nats_server: NatsProcess) -> None:
    """No five-second wait for an acknowledgement that cannot come: the caller answers UNAVAILABLE at once."""
    from chassis.events.tasks import RECONNECT_GRACE_SECONDS

    payload = events_pb2.AgentRegistered(agent_id="queued")
    async with EventBus(settings(nats_server.url, "submitter"), None) as submitter:
        await submitter.tasks.submit("tests.fast_fail", payload)
        await asyncio.to_thread(nats_server.stop)
        # The client notices the closed connection on its next read (what a caller meets once NATS is away).
        await eventually(lambda: asyncio.sleep(0, submitter.nc is not None and not submitter.nc.is_connected), 10,
                         "the bus to notice nats-server is gone")
        try:
            await submitter.tasks.submit("tests.fast_fail", payload)
        except ConnectionError as refused:
            # Refused by the connection check after its grace, not by the publish's 5 s acknowledgement timeout.
            assert f"not connected to NATS (waited {RECONNECT_GRACE_SECONDS:g}s" in str(refused)
        else:
            raise AssertionError("a task was accepted while nats-server was stopped")
        await asyncio.to_thread(nats_server.start)
        await eventually(lambda: asyncio.sleep(0, submitter.nc is not None and submitter.nc.is_connected), 20,
                         "the bus to reconnect")
        assert await submitter.tasks.submit("tests.fast_fail", payload)
