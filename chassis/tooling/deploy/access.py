"""Who connects as whom in compose and Kubernetes: the names of every service's credentials.

As in the local mesh (chassis/tooling/credentials.py), each service has its own PostgreSQL role (named
after it, owning only its schema) and its own NATS user; the admin role and the operator's NATS user
belong to no service. Compose takes the passwords from .env, Kubernetes from one Secret per service;
these names are the single place both targets, nats-server's config and the bootstrap step agree on.
"""

from __future__ import annotations

import re

from chassis.tooling.credentials import SUPERVISOR_USER

DATABASE_HOST = "postgres:5432"
NATS_HOST = "nats:4222"
OPERATOR_NATS_USER = SUPERVISOR_USER
"""The operator's tools (e.g. `protomesh deadletters`) connect as the local supervisor's user: every permission."""
# pragma: allowlist nextline secret - the name of a variable or Secret, not a value
OPERATOR_NATS_PASSWORD = "NATS_OPERATOR_PASSWORD"  # noqa: S105 the name of a variable or Secret, not a value
OPERATOR_SECRET = "protomesh-nats-operator"  # pragma: allowlist secret - the name of a variable or Secret, not a value  # noqa: S105 (same reason)
ADMIN_URL_VAR = "DATABASE_ADMIN_URL"
"""The PostgreSQL admin's URL: given to the bootstrap step only (chassis/tooling/deploy/db_bootstrap.py)."""
ADMIN_SECRET = "protomesh-postgres"  # pragma: allowlist secret - the name of a variable or Secret, not a value  # noqa: S105 (same reason)
"""Kubernetes Secret of the PostgreSQL superuser; only the server and the bootstrap Job read it."""

# A NATS password goes, unquoted, into nats-server's config (a `$NAME` reference is parsed as a config
# value: "123" would become a number, "-x" an error), so it is letters and digits starting with a letter;
# `p$(openssl rand -hex 24)` makes one. A PostgreSQL password only has to fit in a URL unescaped, so those
# `protomesh bootstrap-db` keeps (URL-safe base64) do too.
NATS_PASSWORD_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9]{11,}$")
DB_PASSWORD_PATTERN = re.compile(r"^[A-Za-z0-9_-]{12,}$")
MAKE_PASSWORD = "p$(openssl rand -hex 24)"  # pragma: allowlist secret - a shell command that makes a password, not one  # noqa: S105 (same reason)


def env_prefix(service: str) -> str:
    """AGENT for agent, ORDER_ITEMS for order-items (a service name is a DNS label)."""
    return service.upper().replace("-", "_")


def db_password_var(service: str) -> str:
    """Variable holding the service's PostgreSQL password (compose's .env, the bootstrap's environment)."""
    return f"{env_prefix(service)}_DB_PASSWORD"


def nats_password_var(service: str) -> str:
    """Variable holding the service's NATS password (.env, nats-server's environment)."""
    return f"{env_prefix(service)}_NATS_PASSWORD"


def credentials_secret(service: str) -> str:
    """The service's Kubernetes Secret with SECRET_KEYS."""
    return f"protomesh-{service}-credentials"


SECRET_KEYS = ("DATABASE_PASSWORD", "DATABASE_URL", "NATS_PASSWORD", "NATS_URL")
"""Keys of a service's credentials Secret: the URLs for the service, the passwords for the bootstrap Job and
nats-server (which cannot take them out of a URL)."""


def database_url(service: str, password: str, database: str) -> str:
    """The service's DATABASE_URL; password and database may be placeholders of the target's syntax."""
    return f"postgresql://{service}:{password}@{DATABASE_HOST}/{database}"


def nats_url(service: str, password: str) -> str:
    """The service's NATS_URL (nats-py reads the user from it)."""
    return f"nats://{service}:{password}@{NATS_HOST}"
