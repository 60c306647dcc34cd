"""NATS: publish and request/reply over one connection per integration (nats-py), kept open and reconnecting."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client as NatsConnection

from chassis.errors import DeadlineExceeded, FailedPrecondition, FieldViolation, InvalidArgument, Violations
from protomesh.integration.v1 import integration_pb2
from services.integration.clients.base import (
    ClientSpec,
    ExternalClient,
    Operation,
    Shared,
    Steps,
    Target,
    external_error,
    number,
    string_list,
    text,
    unknown_keys,
    within,
)

CONFIG_FIELDS = ("servers*", "subject_prefix", "name")


def _subject_ok(subject: str) -> bool:
    tokens = subject.split(".")
    return all(t and not any(c in t for c in " \t\r\n*>") for t in tokens)


def _split(server: str) -> tuple[str, str, int]:
    """scheme, host and port (4222 unless given) of a server URL."""
    parts = urllib.parse.urlsplit(server if "://" in server else f"nats://{server}")
    return parts.scheme, parts.hostname or "", parts.port or 4222


def _servers(config: Mapping[str, Any]) -> list[str]:
    servers = config.get("servers") or []
    return [servers] if isinstance(servers, str) else list(servers)


def targets(config: dict[str, Any]) -> list[Target]:
    """Every server."""
    return [Target(f"config.servers[{i}]", *_split(s)[1:]) for i, s in enumerate(_servers(config))]


def binding(config: dict[str, Any]) -> dict[str, Any]:
    """The credentials are for these servers."""
    return {"config.servers": sorted(_split(s) for s in _servers(config))}


def validate_config(v: Violations, config: dict[str, Any], credentials: Mapping[str, str]) -> None:
    """servers: nats:// URLs without user info; token, or username with password, as credentials."""
    unknown_keys(v, config, [f.rstrip("*") for f in CONFIG_FIELDS] + ["resilience", "rate_limit", "cache"], "config")
    for i, server in enumerate(string_list(v, config, "servers", "config.servers", required=True)):
        scheme, _, rest = server.partition("://")
        try:
            host = _split(server)[1]
        except ValueError:  # a port that is not 1-65535
            host = ""
        v.check(scheme in ("nats", "tls") and bool(rest) and "@" not in rest and bool(host), f"config.servers[{i}]",
                "must be nats://host:port or tls://host:port, without user info (use credentials)")
    prefix = text(v, config, "subject_prefix", "config.subject_prefix", max_len=255)
    v.check(not prefix or _subject_ok(prefix), "config.subject_prefix", "must be a subject without wildcards")
    text(v, config, "name", "config.name", max_len=128)
    v.check(not (credentials.get("token") and credentials.get("username")), "credentials.token",
            "a token or a username and password, not both")
    v.check(bool(credentials.get("username")) == bool(credentials.get("password")), "credentials.password",
            "username and password go together")


def validate_params(v: Violations, operation: str, params: dict[str, Any], config: dict[str, Any]) -> None:
    """publish/request: a subject (below config.subject_prefix) and data (text) or json (any JSON)."""
    unknown_keys(v, params, ("subject", "data", "json", "timeout_seconds", "headers"), "parameters")
    subject = text(v, params, "subject", "parameters.subject", required=True, max_len=255)
    if subject:
        prefix = config.get("subject_prefix")
        v.check(_subject_ok(subject), "parameters.subject", "must be a subject without spaces or wildcards")
        v.check(not prefix or subject == prefix or subject.startswith(prefix + "."), "parameters.subject",
                f"must be below {prefix}")
    v.check(not ("data" in params and "json" in params), "parameters.data", "data or json, not both")
    text(v, params, "data", "parameters.data", max_len=1024 * 1024)
    number(v, params, "timeout_seconds", "parameters.timeout_seconds", low=0.01, high=60)


def _payload(params: dict[str, Any]) -> bytes:
    if "json" in params:
        return json.dumps(params["json"], separators=(",", ":")).encode()
    return str(params.get("data", "")).encode()


def _decode(data: bytes) -> dict[str, Any]:
    text_value = data.decode("utf-8", errors="replace")
    try:
        return {"data": text_value, "json": json.loads(data)} if data else {"data": ""}
    except ValueError:
        return {"data": text_value}


class NatsClient(ExternalClient):
    """Publishes and requests on one NATS server (cluster), connecting on first use."""

    def __init__(self, name: str, config: dict[str, Any], credentials: Mapping[str, str], shared: Shared) -> None:
        super().__init__(name, config, credentials, shared)
        self._nc: NatsConnection | None = None
        self._lock = asyncio.Lock()

    async def _quiet(self, exc: Exception) -> None:
        """nats-py reports connection trouble here; the caller sees it as errors of its calls instead."""

    async def _checked_servers(self) -> list[str]:
        """The configured servers, each checked; nats:// ones as the checked addresses themselves (so nats-py
        does not resolve the name again). tls:// ones keep their name, which the certificate must match."""
        servers: list[str] = []
        for i, server in enumerate(_servers(self.config)):
            scheme, host, port = _split(server)
            try:
                addresses = await self.shared.targets.check(host, port, f"config.servers[{i}]")
            except OSError as exc:
                raise external_error(exc, self.name, self.secrets) from None
            if scheme == "tls":
                servers.append(server)
            else:
                servers += [f"nats://[{a}]:{port}" if ":" in a else f"nats://{a}:{port}" for a in addresses]
        return servers

    async def _connection(self, timeout: float) -> NatsConnection:
        async with self._lock:
            if self._nc is not None and not self._nc.is_closed:
                return self._nc
            options: dict[str, Any] = {
                "servers": await self._checked_servers(), "name": self.config.get("name") or "protomesh-integration",
                "connect_timeout": max(min(timeout, 5.0), 0.1), "max_reconnect_attempts": 1,
                # No reconnecting: nats-py would reconnect to servers the server itself advertises
                # (connect_urls), which nobody checked. A lost connection is closed instead, and the next
                # call connects again, checking the configured servers again.
                "allow_reconnect": False, "error_cb": self._quiet,
            }
            if self.credential("token"):
                options["token"] = self.credential("token")
            if self.credential("username"):
                options.update(user=self.credential("username"), password=self.credential("password"))
            try:
                self._nc = await asyncio.wait_for(nats.connect(**options), timeout=max(timeout, 0.1))
            except Exception as exc:
                if isinstance(exc, nats.errors.Error) and "authorization" in str(exc).lower():
                    raise FailedPrecondition(f"{self.name}: the NATS server refused the credentials") from None
                raise external_error(exc, self.name, self.secrets) from None
            return self._nc

    async def invoke(self, operation: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        nc = await self._connection(timeout)
        subject = params["subject"]
        try:
            if operation == "publish":
                payload = _payload(params)
                await nc.publish(subject, payload, headers=params.get("headers") or None)
                # within(), not flush(timeout=): nats-py types that timeout as whole seconds.
                await within(deadline - time.monotonic(), nc.flush())
                return {"subject": subject, "bytes": len(payload)}
            wait = min(float(params.get("timeout_seconds") or timeout), max(deadline - time.monotonic(), 0.01))
            reply = await nc.request(subject, _payload(params), timeout=wait, headers=params.get("headers") or None)
            return {"subject": subject, **_decode(reply.data), "headers": dict(reply.headers or {})}
        except nats.errors.NoRespondersError:
            raise InvalidArgument([FieldViolation("parameters.subject", f"nobody answers requests on {subject}")]
                                  ) from None
        except (nats.errors.TimeoutError, TimeoutError):
            raise DeadlineExceeded(f"{self.name}: no reply on {subject} in time") from None
        except Exception as exc:
            raise external_error(exc, self.name, self.secrets) from None

    async def health(self, timeout: float) -> str:
        started = time.perf_counter()
        nc = await self._connection(timeout)
        try:
            await within(timeout, nc.flush())
        except Exception as exc:
            raise external_error(exc, self.name, self.secrets) from None
        server = nc.connected_url.netloc if nc.connected_url else "no server"
        return f"PING/PONG in {1000 * (time.perf_counter() - started):.1f} ms ({server})"

    async def test(self, steps: Steps, timeout: float) -> None:
        deadline = time.monotonic() + timeout

        async def connect() -> str:
            return await self.health(deadline - time.monotonic())

        async def round_trip() -> str:
            nc = await self._connection(deadline - time.monotonic())
            subject = f"{self.config.get('subject_prefix') or '_protomesh'}.probe.{uuid.uuid4().hex}"

            async def echo(msg: Any) -> None:
                await msg.respond(msg.data)

            sub = await nc.subscribe(subject, cb=echo)
            try:
                reply = await nc.request(subject, b"ping", timeout=max(deadline - time.monotonic(), 0.01))
            finally:
                await sub.unsubscribe()
            if reply.data != b"ping":
                raise FailedPrecondition("the echo differs")
            return f"request/reply on {subject}"

        await steps.run("connect and authenticate", connect)
        await steps.run("request/reply", round_trip)

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            # Closing a broken connection may fail; it is being dropped either way.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), timeout=2)
        self._nc = None


SPEC = ClientSpec(
    client_type="nats",
    kind=integration_pb2.INTEGRATION_KIND_NATS,
    description="NATS servers: publish, and request/reply with a deadline",
    operations=(Operation("publish"), Operation("request")),
    config_fields=CONFIG_FIELDS,
    credential_fields=("token", "username", "password"),
    validate_config=validate_config,
    validate_params=validate_params,
    factory=NatsClient,
    targets=targets,
    binding=binding,
)

__all__ = ["SPEC", "Shared"]
