"""Replica settings: one frozen dataclass read from environment variables once, checked at start; and the
one loader for every service's own settings dataclass."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import types
import typing
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from chassis.tls import TlsFiles


class ConfigError(ValueError):
    """An environment variable has a value the runtime cannot use."""


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _text(env, name, default).lower()
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(allowed)}")
    return value


def env_int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    """An integer variable within low..high, or default when unset; ConfigError names a bad one."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is outside {low}..{high}")
    return value


def env_float(env: Mapping[str, str], name: str, default: float, *, low: float, high: float) -> float:
    """A number variable within low..high, or default when unset; ConfigError names a bad one."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is outside {low}..{high}")
    return value


@dataclass(frozen=True)
class Settings:
    """Settings of one service replica."""

    service: str
    """Service name, e.g. "agent"; also the env prefix and the registry name."""
    grpc_host: str = "127.0.0.1"
    """Address the gRPC server binds (GRPC_HOST); 0.0.0.0 in containers."""
    grpc_port: int = 50051
    """Port the gRPC server binds (GRPC_PORT); 0 picks a free one."""
    database_url: str | None = None
    """PostgreSQL connection URL (DATABASE_URL)."""
    nats_url: str | None = None
    """NATS server URL (NATS_URL)."""
    consul_http_addr: str | None = None
    """Consul agent host:port (CONSUL_HTTP_ADDR); when set, the registry is Consul instead of NATS KV."""
    advertise_host: str = "127.0.0.1"
    """Address other replicas and Envoy dial (ADVERTISE_HOST); defaults to GRPC_HOST, or this host's
    name when GRPC_HOST is 0.0.0.0."""
    registry_ttl_seconds: float = 5.0
    """A replica that stops heartbeating drops out of the registry after this long (REGISTRY_TTL_SECONDS)."""
    instance_id: str = ""
    """Unique id of this replica (INSTANCE_ID); defaults to service-host-random."""
    log_level: str = "INFO"
    """Python log level name (LOG_LEVEL)."""
    shutdown_grace_seconds: float = 10.0
    """How long in-flight calls may run after SIGTERM (SHUTDOWN_GRACE_SECONDS)."""
    health_interval_seconds: float = 1.0
    """How often dependencies are probed (HEALTH_INTERVAL_SECONDS)."""
    db_pool_min: int = 2
    """Connections kept open (DB_POOL_MIN)."""
    db_pool_max: int = 10
    """Most connections open at once (DB_POOL_MAX)."""
    db_acquire_timeout_seconds: float = 5.0
    """How long a call waits for a pooled connection before UNAVAILABLE (DB_ACQUIRE_TIMEOUT_SECONDS)."""
    startup_timeout_seconds: float = 60.0
    """How long start-up waits for PostgreSQL before giving up (STARTUP_TIMEOUT_SECONDS)."""
    metrics_port: int = 0
    """Port of the Prometheus /metrics endpoint (METRICS_PORT); 0 picks a free one, -1 turns it off."""
    http_port: int = 0
    """Port of the service's own HTTP listener (<SERVICE>_HTTP_PORT, else HTTP_PORT), for a service that
    declares `http`; 0 picks a free one. The bound port is registered as the replica's `http_port` metadata."""
    breaker_state: str = "local"
    """Where circuit breaker state lives (BREAKER_STATE): "local" to this process, or "shared" by every
    replica of the service through NATS KV."""
    version: str = "0.1.0"
    """Release version reported by GetInfo (SERVICE_VERSION)."""
    tls: TlsFiles | None = None
    """The replica's mesh certificate, key and CA (MESH_TLS_CERT, MESH_TLS_KEY, MESH_TLS_CA; chassis.tls):
    gRPC and HTTP over mTLS. None (plaintext) only when set so: MESH_TLS=off, or a Settings built in code."""

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from the environment; raise ConfigError naming the bad variable."""
        env = os.environ if env is None else env
        instance = _text(env, "INSTANCE_ID", f"{service}-{socket.gethostname()}-{uuid.uuid4().hex[:6]}")
        level = _text(env, "LOG_LEVEL", "INFO").upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ConfigError(f"LOG_LEVEL={level!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        database_url = _optional(env, "DATABASE_URL")
        if database_url and not database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("DATABASE_URL must start with postgresql://")
        grpc_host = _text(env, "GRPC_HOST", "127.0.0.1")
        default_advertise = socket.gethostname() if grpc_host in ("0.0.0.0", "::", "[::]") else grpc_host  # noqa: S104 compares with the wildcard addresses, binds nothing
        return cls(
            service=service,
            grpc_host=grpc_host,
            grpc_port=env_int(env, "GRPC_PORT", 50051, low=0, high=65535),
            database_url=database_url,
            nats_url=_optional(env, "NATS_URL"),
            consul_http_addr=_optional(env, "CONSUL_HTTP_ADDR"),
            advertise_host=_text(env, "ADVERTISE_HOST", default_advertise),
            registry_ttl_seconds=env_float(env, "REGISTRY_TTL_SECONDS", 5.0, low=0.5, high=600),
            instance_id=instance,
            log_level=level,
            shutdown_grace_seconds=env_float(env, "SHUTDOWN_GRACE_SECONDS", 10.0, low=0, high=600),
            health_interval_seconds=env_float(env, "HEALTH_INTERVAL_SECONDS", 1.0, low=0.05, high=60),
            db_pool_min=env_int(env, "DB_POOL_MIN", 2, low=0, high=100),
            db_pool_max=env_int(env, "DB_POOL_MAX", 10, low=1, high=200),
            db_acquire_timeout_seconds=env_float(env, "DB_ACQUIRE_TIMEOUT_SECONDS", 5.0, low=0.1, high=120),
            startup_timeout_seconds=env_float(env, "STARTUP_TIMEOUT_SECONDS", 60.0, low=1, high=3600),
            metrics_port=env_int(env, "METRICS_PORT", 0, low=-1, high=65535),
            http_port=env_int(env, f"{service.upper().replace('-', '_')}_HTTP_PORT",
                              env_int(env, "HTTP_PORT", 0, low=0, high=65535), low=0, high=65535),
            breaker_state=_choice(env, "BREAKER_STATE", "local", ("local", "shared")),
            version=_text(env, "SERVICE_VERSION", "0.1.0"),
            tls=_tls_files(env),
        )


TLS_VARIABLES = ("MESH_TLS_CERT", "MESH_TLS_KEY", "MESH_TLS_CA")


def _tls_files(env: Mapping[str, str]) -> TlsFiles | None:
    """The mesh credentials' files; None only with MESH_TLS=off. A replica never falls back to plaintext."""
    mode = _choice(env, "MESH_TLS", "on", ("on", "off"))
    paths = {name: _optional(env, name) for name in TLS_VARIABLES}
    if mode == "off":
        if any(paths.values()):
            raise ConfigError(f"MESH_TLS=off but {', '.join(n for n, v in paths.items() if v)} set: choose one")
        return None
    missing = [name for name, value in paths.items() if not value]
    if missing:
        raise ConfigError(f"{', '.join(missing)} not set: a replica serves mTLS with MESH_TLS_CERT, MESH_TLS_KEY "
                          "and MESH_TLS_CA (`protomesh up` sets them), or plaintext only with MESH_TLS=off")
    files = TlsFiles(*(Path(paths[name] or "") for name in TLS_VARIABLES))
    for name, path in zip(TLS_VARIABLES, (files.cert, files.key, files.ca), strict=True):
        if not path.is_file():
            raise ConfigError(f"{name}={str(path)!r} is not a readable file")
    return files


# --- Per-service settings: one frozen dataclass, one loader -------------------------------------------

SettingsT = TypeVar("SettingsT")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class Url(str):
    """A setting holding an absolute URL (scheme and host checked when it is read)."""


def setting(default: Any, *, low: float | None = None, high: float | None = None,
            choices: tuple[str, ...] = ()) -> Any:
    """A settings field with bounds (numbers and durations, inclusive) or allowed values (text).

    Use as the default of a field in a frozen dataclass read by `load_settings`:
    `workers: int = setting(2, low=1, high=64)`.
    """
    return dataclasses.field(default=default, metadata={"low": low, "high": high, "choices": choices})


def load_settings(cls: type[SettingsT], prefix: str, env: Mapping[str, str] | None = None) -> SettingsT:
    """Read a frozen dataclass of settings from `<PREFIX>_<FIELD>` variables, each parsed once by its type.

    Types understood: int, float, bool (true/false/1/0/yes/no/on/off), str, Url, Path, timedelta
    ("250ms", "30s", "5m", "2h", "1d" or plain seconds) and `X | None` of those (unset means None).
    An unset or empty variable keeps the field's default. A bad value raises ConfigError naming the
    variable and what it should be.
    """
    env = os.environ if env is None else env
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init:
            continue
        name = f"{prefix.upper()}_{f.name.upper()}"
        raw = env.get(name, "").strip()
        if not raw:
            continue
        values[f.name] = _parse(name, raw, hints[f.name], f.metadata)
    return cls(**values)


def _parse(name: str, raw: str, kind: Any, meta: Mapping[str, Any]) -> Any:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(options) != 1:
            raise TypeError(f"{name}: settings fields may be X or X | None, not {kind}")
        kind = options[0]
    if kind is bool:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ConfigError(f"{name}={raw!r} is not a boolean: use true or false")
    if kind is int:
        try:
            value: Any = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a whole number") from None
        return _bounded(name, value, value, meta)
    if kind is float:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a number") from None
        return _bounded(name, value, value, meta)
    if kind is timedelta:
        match = _DURATION.match(raw.lower())
        if not match:
            raise ConfigError(f"{name}={raw!r} is not a duration: use e.g. 250ms, 30s, 5m, 2h or 1d")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        return _bounded(name, timedelta(seconds=seconds), seconds, meta)
    if kind is Url:
        parts = urllib.parse.urlsplit(raw)
        if not parts.scheme or not parts.netloc:
            raise ConfigError(f"{name}={raw!r} is not an absolute URL (scheme://host[:port]/...)")
        return Url(raw)
    if kind is Path:
        return Path(raw).expanduser()
    if kind is str:
        choices = meta.get("choices") or ()
        if choices and raw.lower() not in choices:
            raise ConfigError(f"{name}={raw!r} is not one of {', '.join(choices)}")
        return raw.lower() if choices else raw
    raise TypeError(f"{name}: no parser for settings of type {kind}")


def _bounded(name: str, value: Any, number: float, meta: Mapping[str, Any]) -> Any:
    low, high = meta.get("low"), meta.get("high")
    if low is not None and number < low:
        raise ConfigError(f"{name}={number:g} is too small: use at least {low:g}" + _up_to(high))
    if high is not None and number > high:
        raise ConfigError(f"{name}={number:g} is too large: use at most {high:g}")
    return value


def _up_to(high: float | None) -> str:
    return f" (and at most {high:g})" if high is not None else ""
