"""A build of a service for the release tests: the service itself, with failures or latency added to its
RPCs, so a test can release a bad build without touching the shared working tree.

`python -m tests.e2e.release_build` with RELEASE_BUILD_SERVICE (e.g. context), and RELEASE_BUILD_FAIL_PERCENT
(that share of calls answers INTERNAL) and/or RELEASE_BUILD_DELAY_MS (every call waits that long first).
Health checks are untouched: a bad build starts and reports SERVING like a real one would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import os
import random
from collections.abc import Callable, Coroutine
from typing import Any

import grpc

from chassis.config import Settings
from chassis.server import run
from chassis.service import Service, Servicer


def faulty(servicer_cls: type, fail_percent: float, delay_ms: float) -> type:
    """A subclass of servicer_cls whose unary RPCs fail `fail_percent` % of the time and wait `delay_ms` first."""
    descriptor = Servicer.of(servicer_cls).descriptor
    overrides: dict[str, Any] = {}
    for method in descriptor.methods:
        if method.client_streaming or method.server_streaming:
            continue
        overrides[method.name] = _wrapped(getattr(servicer_cls, method.name), fail_percent, delay_ms)
    return type(f"Faulty{servicer_cls.__name__}", (servicer_cls,), overrides)


def _wrapped(original: Callable[..., Coroutine[Any, Any, Any]], fail_percent: float,
             delay_ms: float) -> Callable[..., Coroutine[Any, Any, Any]]:
    async def method(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        if random.uniform(0, 100) < fail_percent:
            await context.abort(grpc.StatusCode.INTERNAL, "release test build: injected failure")
        return await original(self, request, context)
    return method


def main() -> None:
    """Build the named service with its servicers wrapped and run one replica of it."""
    name = os.environ["RELEASE_BUILD_SERVICE"]
    fail_percent = float(os.environ.get("RELEASE_BUILD_FAIL_PERCENT", "0"))
    delay_ms = float(os.environ.get("RELEASE_BUILD_DELAY_MS", "0"))
    service: Service[Any, Any] = importlib.import_module(f"services.{name}.app").build()
    service = dataclasses.replace(service, servicers=[faulty(cls, fail_percent, delay_ms) for cls in service.servicers])
    asyncio.run(run(service, Settings.from_env(service.name)))


if __name__ == "__main__":
    main()
