"""`services/<name>/deploy.toml`: what a service says about its own deployment, and nothing else.

Everything is optional; a service without the file gets the defaults (2 replicas, only the runtime's
environment). The format:

    replicas = 2                     # compose and Kubernetes (1 to 64)

    [compose]                        # per-target overrides (only `replicas`)
    replicas = 1

    [env]                            # NAME = "value", the same everywhere (numbers and booleans become text)
    ORDERS_BATCH_SIZE = 50

    [overridable_env]                # defaults the operator is expected to change: compose takes
    ORDERS_SMTP_HOST = "smtp.example.com"  # .env's or the shell's value when set (Kubernetes: a patch)

    [secrets]                        # NAME = "what it is for"; the value comes from the operator
    ORDERS_ENCRYPTION_KEY = "Seals order notes at rest; every replica needs the same key."

    [required_secrets]               # as [secrets], but an empty value is refused too (compose will not
    ORDERS_SIGNING_KEY = "..."       # start): for a secret the service cannot make up on its own

What the contracts already say is not declared here but derived by the generator (derived.py): the
HTTP listener's port of a deployable that serves `http_served` contracts, the identity service's issuer.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE_NAME = "deploy.toml"
DEFAULT_REPLICAS = 2
MAX_REPLICAS = 64
TARGETS = ("compose", "kubernetes")

RUNTIME_ENV = frozenset({
    "GRPC_HOST", "GRPC_PORT", "DATABASE_URL", "NATS_URL", "CONSUL_HTTP_ADDR", "LOG_LEVEL",
    "SHUTDOWN_GRACE_SECONDS", "OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT", "METRICS_PORT", "HTTP_PORT",
})
"""Set for every service by the shared parts of compose.yaml and deploy/k8s/config.yaml; a service
redefining one would get it twice in its Kubernetes env list, so a declaration may not. (HTTP_PORT is
derived from the contracts for the services that have an HTTP listener: derived.py.)"""

_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
# Compose and Kubernetes both expand `$` in values; an overridable one is written `${NAME:-value}` for
# compose, where a `}` would end it early.
_UNSAFE_VALUE = re.compile(r"[$\x00-\x1f]")
_UNSAFE_OVERRIDABLE = re.compile(r"[$}\x00-\x1f]")


class DeclarationError(ValueError):
    """A deploy.toml that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class EnvVar:
    """A plain setting of the service."""

    name: str
    value: str
    overridable: bool = False
    """Whether compose lets .env or the shell replace the value. Off by default: a variable the operator's
    shell happens to hold (PROTOMESH_STATE_DIR, say) must not leak into a container unasked."""


@dataclass(frozen=True)
class Secret:
    """A value the operator provides: compose reads it from .env, Kubernetes from a Secret."""

    name: str
    """Environment variable, e.g. ``NOTIFICATION_ENCRYPTION_KEY``."""
    about: str
    """What it is for; written as a comment beside it in every generated file."""
    required: bool = False
    """Whether an empty value is refused as well as a missing one ([required_secrets])."""


@dataclass(frozen=True)
class ServiceDeploy:
    """One service's declaration, checked and with the defaults filled in."""

    service: str
    compose_replicas: int = DEFAULT_REPLICAS
    kubernetes_replicas: int = DEFAULT_REPLICAS
    env: tuple[EnvVar, ...] = ()
    """[env], then [overridable_env], each in the order the file lists them."""
    secrets: tuple[Secret, ...] = ()
    """[secrets], then [required_secrets]."""
    http_port: int = 0
    """Port of the replicas' HTTP listener (HTTP_PORT), 0 for none: derived from the contracts, never declared."""
    derived_env: tuple[EnvVar, ...] = ()
    """Settings the generator derives from the contracts (derived.py), after HTTP_PORT."""

    @property
    def secret_name(self) -> str:
        """The Kubernetes Secret holding this service's secrets."""
        return f"protomesh-{self.service}"


def load_declaration(service: str, path: Path) -> ServiceDeploy:
    """The declaration in `path`, or the defaults when the file does not exist."""
    if not path.is_file():
        return ServiceDeploy(service=service)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise DeclarationError(f"{path}: not valid TOML: {exc}") from None
    return parse_declaration(service, data, where=str(path))


def parse_declaration(service: str, data: Mapping[str, Any], *, where: str) -> ServiceDeploy:
    """Check a parsed deploy.toml; unknown keys are errors, so a typo never silently does nothing."""
    _only(data, {"replicas", *TARGETS, "env", "overridable_env", "secrets", "required_secrets"}, where)
    replicas = _replicas(data.get("replicas", DEFAULT_REPLICAS), f"{where}: replicas")
    per_target: dict[str, int] = {}
    for target in TARGETS:
        table = _table(data.get(target, {}), f"{where}: [{target}]")
        _only(table, {"replicas"}, f"{where}: [{target}]")
        per_target[target] = _replicas(table.get("replicas", replicas), f"{where}: [{target}] replicas")

    env = _env(data, "env", where) + _env(data, "overridable_env", where)
    secrets = tuple(Secret(name, _about(about, f"{where}: [{key}] {name}"), required=key == "required_secrets")
                    for key in ("secrets", "required_secrets")
                    for name, about in _table(data.get(key, {}), f"{where}: [{key}]").items())
    names = [e.name for e in env] + [s.name for s in secrets]
    for name in names:
        if not _ENV_NAME.match(name):
            raise DeclarationError(f"{where}: {name!r} is not an environment variable name (A-Z, 0-9, _)")
        if name in RUNTIME_ENV:
            raise DeclarationError(f"{where}: {name} is set for every service already; declare only this "
                                   "service's own settings")
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise DeclarationError(f"{where}: {', '.join(twice)} declared more than once ([env], [overridable_env], "
                               "[secrets], [required_secrets])")
    return ServiceDeploy(service=service, compose_replicas=per_target["compose"],
                         kubernetes_replicas=per_target["kubernetes"], env=env, secrets=secrets)


def _env(data: Mapping[str, Any], key: str, where: str) -> tuple[EnvVar, ...]:
    overridable = key == "overridable_env"
    return tuple(EnvVar(name, _env_value(value, f"{where}: [{key}] {name}", overridable), overridable)
                 for name, value in _table(data.get(key, {}), f"{where}: [{key}]").items())


def _only(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise DeclarationError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DeclarationError(f"{where}: expected a table, got {value!r}")
    return value


def _replicas(value: Any, where: str) -> int:
    # bool is an int in Python; `replicas = true` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_REPLICAS:
        raise DeclarationError(f"{where}: expected a whole number from 1 to {MAX_REPLICAS}, got {value!r}")
    return value


def _env_value(value: Any, where: str, overridable: bool) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise DeclarationError(f"{where}: expected text, a number or a boolean, got {value!r}")
    if (_UNSAFE_OVERRIDABLE if overridable else _UNSAFE_VALUE).search(text):
        unsafe = "'$', '}'" if overridable else "'$'"
        raise DeclarationError(f"{where}: {text!r} may not hold {unsafe} or control characters")
    return text


def _about(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value.strip():
        raise DeclarationError(f"{where}: expected one line saying what the secret is for, got {value!r}")
    return value.strip()
