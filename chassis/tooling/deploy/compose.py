"""compose.yaml's generated regions: one block per mesh service, and Envoy's wait for all of them.

The blocks lean on the hand-written `x-service` anchor (image, runtime environment, gRPC health probe,
start after the infrastructure), so each one only names the service and adds its own declaration.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence

from chassis.tooling.catalog import MeshService
from chassis.tooling.deploy.declaration import ServiceDeploy

FILE = "compose.yaml"


def regions(services: Sequence[MeshService], deploys: dict[str, ServiceDeploy]) -> dict[str, str]:
    """Content of compose.yaml's regions, by region name."""
    return {
        "envoy-depends-on": "".join(f"{s.name}:\n  condition: service_healthy\n" for s in services),
        "services": "\n".join(_block(s, deploys[s.name]) for s in services),
    }


def _block(service: MeshService, deploy: ServiceDeploy) -> str:
    lines = [
        f"{service.name}:",
        "  <<: *service",
        f'  command: ["python", "-m", "{service.module}"]',
        "  environment:",
        "    <<: *service-environment",
        f"    OTEL_SERVICE_NAME: {service.name}",
    ]
    for env in deploy.env:
        # An overridable value is only the default: .env or the shell may set the variable instead.
        value = "${" + env.name + ":-" + env.value + "}" if env.overridable else env.value
        lines.append(f"    {env.name}: {_quoted(value)}")
    for secret in deploy.secrets:
        lines += _comment(secret.about, "    ")
        # `?` makes compose refuse to start, naming the variable, when neither .env nor the shell sets it;
        # an empty value is allowed (a service may then fall back, e.g. to a generated key).
        required = "${" + secret.name + "?set it in .env (a secret of " + service.name + ")}"
        lines.append(f"    {secret.name}: {_quoted(required)}")
    lines += ["  deploy:", f"    replicas: {deploy.compose_replicas}"]
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    # A JSON string is a valid double-quoted YAML scalar, so no value can change the YAML's structure.
    return json.dumps(text)


def _comment(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(text, 110)]
