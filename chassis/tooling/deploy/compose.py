"""compose.yaml's generated regions: one block per mesh service, Envoy's wait for all of them, the
database bootstrap and nats-server's passwords.

The blocks lean on the hand-written `x-service` anchor (image, runtime environment, gRPC health probe,
start after the infrastructure and the bootstrap), so each one only names the service, its own
credentials and its own declaration. No service gets the admin's URL: that is the bootstrap's alone.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence

from chassis.tooling.catalog import MeshService
from chassis.tooling.deploy import access
from chassis.tooling.deploy.declaration import ServiceDeploy

FILE = "compose.yaml"
PKI = "mesh-pki"
"""The service issuing every workload's mesh certificate from the CA volume and renewing it (mTLS)."""
ENVOY_UID = "101"
"""The user Envoy's image runs as: the gateway's key must be readable by it."""
SERVICE_UID = "10001"
"""The user of the protomesh image (Dockerfile): the replicas' keys are its."""
BOOTSTRAP = "db-bootstrap"
"""The one-shot service that creates every service's role and schema; every mesh service waits for it."""
DATABASE = "${POSTGRES_DB}"


def regions(services: Sequence[MeshService], deploys: dict[str, ServiceDeploy]) -> dict[str, str]:
    """Content of compose.yaml's regions, by region name."""
    return {
        "envoy-depends-on": "".join(f"{s.name}:\n  condition: service_healthy\n" for s in services),
        "services": "\n".join(_block(s, deploys[s.name]) for s in services),
        "db-bootstrap": _bootstrap(services),
        "mesh-pki": _pki(services),
        "nats-passwords": "".join(f"{var}: {_quoted(_required(var, about))}\n"
                                  for var, about in _nats_passwords(services)),
    }


def _required(variable: str, about: str) -> str:
    # `:?` refuses to start, naming the variable, when it is unset or empty: no service runs without a password.
    return "${" + variable + ":?set it in .env (" + about + ")}"


def _db_password(service: str) -> str:
    return _required(access.db_password_var(service), f"PostgreSQL password of {service}")


def _nats_password(service: str) -> str:
    return _required(access.nats_password_var(service), f"NATS password of {service}")


def _nats_passwords(services: Sequence[MeshService]) -> list[tuple[str, str]]:
    return [(access.OPERATOR_NATS_PASSWORD, "NATS password of the operator"),
            *((access.nats_password_var(s.name), f"NATS password of {s.name}") for s in services)]


def _bootstrap(services: Sequence[MeshService]) -> str:
    command = ["python", "-m", "chassis.tooling.deploy.db_bootstrap", *(s.name for s in services)]
    lines = [
        f"{BOOTSTRAP}:",
        "  # Creates (or updates) one role per service that owns only its schema, as the admin, then exits;",
        "  # the admin's URL is given to nothing else.",
        "  image: ${PROTOMESH_IMAGE}",
        "  build: *build",
        f"  command: {json.dumps(command)}",
        "  environment:",
        f"    {access.ADMIN_URL_VAR}: postgresql://${{POSTGRES_USER}}:${{POSTGRES_PASSWORD}}@{access.DATABASE_HOST}/{DATABASE}",
        *(f"    {access.db_password_var(s.name)}: {_quoted(_db_password(s.name))}" for s in services),
        "  depends_on:",
        "    postgres:",
        "      condition: service_healthy",
        '  restart: "no"',
    ]
    return "\n".join(lines) + "\n"


def _pki(services: Sequence[MeshService]) -> str:
    workloads = ["gateway", "consul", *(s.name for s in services)]
    command = ["python", "-m", "chassis.tooling.pki", "issue", "--ca-dir", "/ca", "--out", "/pki", "--watch",
               "--chown", f"*={SERVICE_UID}", "--chown", f"gateway={ENVOY_UID}", "--chown", "consul=100",
               *(arg for name in workloads for arg in ("--service", name))]
    lines = [
        f"{PKI}:",
        "  # mTLS inside the mesh (docs/authorization.md): the CA lives in the mesh-ca volume, seen by this",
        "  # service only; each workload's key and certificate (spiffe://protomesh.local/<name>) go to",
        "  # mesh-pki/<name>/, which only that workload mounts, and are renewed at 2/3 of their 24 h life.",
        "  image: ${PROTOMESH_IMAGE}",
        "  build: *build",
        '  user: "0"  # to hand each workload its own files (chown); it runs nothing else',
        f"  command: {json.dumps(command)}",
        "  volumes:",
        "    - mesh-ca:/ca",
        "    - mesh-pki:/pki",
        "  healthcheck:",
        "    # Healthy once every workload's certificate is there: the services and Envoy start after it.",
        f"    test: {json.dumps(['CMD', 'python', '-c', _all_issued(workloads)])}",
        "    interval: 2s",
        "    retries: 30",
        "  restart: unless-stopped",
    ]
    return "\n".join(lines) + "\n"


def _all_issued(workloads: Sequence[str]) -> str:
    files = [f"/pki/{name}/cert.pem" for name in workloads]
    return f"import os,sys; sys.exit(not all(os.path.isfile(f) for f in {files!r}))"


def _block(service: MeshService, deploy: ServiceDeploy) -> str:
    lines = [
        f"{service.name}:",
        "  <<: *service",
        f'  command: ["python", "-m", "{service.module}"]',
        "  environment:",
        "    <<: *service-environment",
        f"    OTEL_SERVICE_NAME: {service.name}",
        # Its own role and NATS user, never the admin's.
        f"    DATABASE_URL: {_quoted(access.database_url(service.name, _db_password(service.name), DATABASE))}",
        f"    NATS_URL: {_quoted(access.nats_url(service.name, _nats_password(service.name)))}",
    ]
    if deploy.http_port:
        lines.append("    # Its HTTP listener's port, derived from the contracts (Envoy's <name>_http cluster).")
        lines.append(f"    HTTP_PORT: {_quoted(str(deploy.http_port))}")
    for env in deploy.derived_env:
        lines.append("    # Derived from the contracts by `protomesh gen` (chassis/tooling/deploy/derived.py).")
        lines.append(f"    {env.name}: {_quoted(env.value)}")
    for env in deploy.env:
        # An overridable value is only the default: .env or the shell may set the variable instead.
        value = "${" + env.name + ":-" + env.value + "}" if env.overridable else env.value
        lines.append(f"    {env.name}: {_quoted(value)}")
    for secret in deploy.secrets:
        lines += _comment(secret.about, "    ")
        # `?` makes compose refuse to start, naming the variable, when neither .env nor the shell sets it;
        # an empty value is allowed (a service may then fall back, e.g. to a generated key). `:?` refuses an
        # empty one too, for a required secret.
        check = ":?" if secret.required else "?"
        required = "${" + secret.name + check + "set it in .env (a secret of " + service.name + ")}"
        lines.append(f"    {secret.name}: {_quoted(required)}")
    lines += [
        "  volumes:",
        "    # Its own mesh certificate only (mTLS; MESH_TLS_* in x-service), renewed in place by mesh-pki.",
        "    - type: volume",
        f"      source: {PKI}",
        "      target: /tls",
        "      read_only: true",
        "      volume:",
        f"        subpath: {service.name}",
        "  deploy:", f"    replicas: {deploy.compose_replicas}"]
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    # A JSON string is a valid double-quoted YAML scalar, so no value can change the YAML's structure.
    return json.dumps(text)


def _comment(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(text, 110)]
