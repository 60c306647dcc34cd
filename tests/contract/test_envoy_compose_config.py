"""The committed Envoy config for compose is what the generator makes from the contracts now, and it reaches
the identity service (JWKS, ext_authz) where compose and Kubernetes run it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from chassis.paths import DESCRIPTOR_SET, ENVOY_DIR, REPO_ROOT
from chassis.tooling.catalog import load_catalog
from chassis.tooling.deploy.derived import ISSUER_ENV, http_deployables
from chassis.tooling.envoy_config import COMPOSE_DESCRIPTOR_PATH, COMPOSE_UPSTREAM_TLS, compose_envoy_config
from chassis.tooling.gateway_auth import EXT_AUTHZ, IDENTITY_DEPLOYABLE, JWT_AUTHN, PROVIDER
from chassis.tooling.infra.envoy import validate_config
from chassis.tooling.pki import LocalCA

COMPOSE_SDS_DIR = str(COMPOSE_UPSTREAM_TLS.sds_dir)
COMPOSE_TLS_DIR = str(COMPOSE_UPSTREAM_TLS.cert_dir)


def test_compose_envoy_config_is_fresh() -> None:
    committed = json.loads((ENVOY_DIR / "compose" / "envoy.json").read_text())
    assert committed == compose_envoy_config(), (
        "envoy/compose/envoy.json is stale: run scripts/gen_protos (or `.venv/bin/protomesh gen`)")


def test_compose_envoy_config_is_valid_for_envoy(tmp_path: Path) -> None:
    # In the container the descriptor set is mounted at /etc/envoy, the SDS files (envoy/compose/sds) at
    # /etc/protomesh/sds and the gateway's certificate at /etc/protomesh/tls/gateway; here they are read from
    # gen/, a copy of the committed SDS files and a certificate this test's own CA issues.
    issued = LocalCA(tmp_path / "ca").issue("gateway", "gateway", directory=tmp_path / "tls" / "gateway")
    sds = tmp_path / "sds"
    sds.mkdir()
    for committed in (ENVOY_DIR / "compose" / "sds").glob("*.json"):
        (sds / committed.name).write_text(committed.read_text().replace(COMPOSE_TLS_DIR, str(issued.directory)))
    text = json.dumps(compose_envoy_config()).replace(str(COMPOSE_DESCRIPTOR_PATH), str(DESCRIPTOR_SET))
    validate_config(json.loads(text.replace(COMPOSE_SDS_DIR, str(sds))), tmp_path)


def _filters(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (listener,) = config["static_resources"]["listeners"]
    (manager,) = listener["filter_chains"][0]["filters"]
    return {f["name"]: f.get("typed_config", {}) for f in manager["typed_config"]["http_filters"]}


def test_envoy_reaches_the_identity_service_where_compose_and_k8s_run_it() -> None:
    """jwt_authn's issuer and the identity_http cluster agree with the identity service's compose block and
    Kubernetes manifest: one place (the generator) derives both, so a token the service signs is one Envoy accepts."""
    config = compose_envoy_config()
    compose = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())["services"][IDENTITY_DEPLOYABLE]["environment"]
    manifests = yaml.safe_load_all((REPO_ROOT / "deploy/k8s/services" / f"{IDENTITY_DEPLOYABLE}.yaml").read_text())
    (deployment,) = [m for m in manifests if m and m["kind"] == "Deployment"]
    k8s = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}

    filters = _filters(config)
    provider = filters[JWT_AUTHN]["providers"][PROVIDER]
    assert provider["issuer"] == compose[ISSUER_ENV] == k8s[ISSUER_ENV]
    assert provider["remote_jwks"]["http_uri"]["cluster"] == filters[EXT_AUTHZ]["http_service"]["server_uri"]["cluster"]

    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    cluster = clusters[provider["remote_jwks"]["http_uri"]["cluster"]]
    (endpoint,) = [e["endpoint"]["address"]["socket_address"]
                   for group in cluster["load_assignment"]["endpoints"] for e in group["lb_endpoints"]]
    # The compose service name (a Kubernetes headless Service of the same name) and the port it listens on.
    assert endpoint == {"address": IDENTITY_DEPLOYABLE, "port_value": int(compose["HTTP_PORT"])}
    assert int(k8s["HTTP_PORT"]) == int(compose["HTTP_PORT"])
    assert not {name for name in clusters if name.endswith("_http")} - {f"{d}_http" for d in http_deployables(
        load_catalog())}, "every HTTP cluster belongs to a deployable whose replicas run an HTTP listener"
