"""chassis.http_listener: a service's `http=` app is served next to gRPC, registered, and stopped with it."""

from __future__ import annotations

import dataclasses
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from chassis.http_listener import HTTP_PORT_META
from chassis.replica import Replica
from tests.support.inprocess import build_service, serve_with_test_infra


def _app(replica: Replica, deps: Any) -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        # Built after the lifespan opened: the handler sees the service's typed deps.
        return web.json_response({"service": replica.service.name, "has_deps": deps is not None})

    app = web.Application()
    app.router.add_get("/hello", hello)
    return app


async def test_the_http_app_is_served_registered_and_stopped(pytestconfig: pytest.Config) -> None:
    service = dataclasses.replace(build_service("services.context"), http=_app)
    async with serve_with_test_infra(pytestconfig, service, env={"CONTEXT_HTTP_PORT": "0"}) as served:
        port = served.replica.http_port
        assert port > 0
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/hello") as answer:
            assert answer.status == 200
            assert await answer.json() == {"service": "context", "has_deps": True}
        assert served.replica.registry is not None
        (instance,) = await served.replica.registry.instances("context", healthy_only=False)
        assert instance.meta[HTTP_PORT_META] == str(port)
    assert served.replica.http_port == 0
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.0.1:{port}/hello")


async def test_a_service_without_http_has_no_listener(pytestconfig: pytest.Config) -> None:
    async with serve_with_test_infra(pytestconfig, build_service("services.context"), nats=False) as served:
        assert served.replica.http_port == 0
