"""The lines of Prometheus' config and alert rules that name the mesh services.

Compose has no service discovery Prometheus can ask, so the scrape job lists every service's DNS name;
Envoy's stats carry no "this is a mesh service" label, so the upstream alert matches the services'
cluster names (Envoy names each service's cluster after it, chassis/tooling/envoy_config.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from chassis.tooling.catalog import MeshService

PROMETHEUS = "deploy/observability/prometheus.yml"
ALERTS = "deploy/observability/alerts.yml"


def prometheus_regions(services: Sequence[MeshService]) -> dict[str, str]:
    """The scrape job's DNS names: one A record per replica of each service."""
    # Quoted, so a service called e.g. `on` stays a name under YAML 1.1's boolean rules.
    return {"service-names": f"names: [{', '.join(json.dumps(s.name) for s in services)}]\n"}


def alert_regions(services: Sequence[MeshService]) -> dict[str, str]:
    """The expression of EnvoyNoHealthyUpstream, limited to the services' clusters."""
    clusters = "|".join(s.name for s in services)
    return {"upstream-clusters": (
        "expr: min by (envoy_cluster_name) "
        f'(envoy_cluster_membership_healthy{{envoy_cluster_name=~"{clusters}"}}) == 0\n'
    )}
