"""compose.yaml and deploy/k8s carry the local mesh's least privilege: a role and a NATS user per service.

No service is given the PostgreSQL admin or the operator's NATS user; nats-server's generated config lets
a service publish nothing of another's; the bootstrap step makes a role for every service in the catalog.
"""

from __future__ import annotations

import os
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

from chassis.events import subjects
from chassis.paths import REPO_ROOT
from chassis.tooling.catalog import Catalog, load_catalog
from chassis.tooling.deploy import access, nats_config
from chassis.tooling.deploy.access import ADMIN_URL_VAR
from chassis.tooling.deploy.compose import BOOTSTRAP
from chassis.tooling.deploy.db_bootstrap import BootstrapError, passwords_from_env
from chassis.tooling.deploy.k8s_access import JOB
from chassis.tooling.infra.nats import nats_server_binary
from chassis.tooling.nats_auth import EVENT_NEEDS
from tests.contract.test_deploy_manifests import ENV_FILE, K8S_DIR, compose_config, k8s_resources

NATS_CONF = REPO_ROOT / nats_config.FILE


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def dotenv() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if "=" in line and line[0] != "#")
    return {name: value for name, value in pairs}


@pytest.fixture(scope="module")
def compose_services() -> dict[str, dict[str, Any]]:
    model = compose_config(REPO_ROOT).model
    assert model is not None
    return dict(model["services"])


# --- compose ---------------------------------------------------------------------------------------------


def test_each_compose_service_connects_as_itself(catalog: Catalog, compose_services: dict[str, dict[str, Any]],
                                                 dotenv: dict[str, str]) -> None:
    admin, operator = dotenv["POSTGRES_PASSWORD"], dotenv[access.OPERATOR_NATS_PASSWORD]
    for service in catalog.names:
        env = compose_services[service]["environment"]
        database = urllib.parse.urlsplit(env["DATABASE_URL"])
        nats = urllib.parse.urlsplit(env["NATS_URL"])
        assert (database.username, database.password) == (service, dotenv[access.db_password_var(service)])
        assert (nats.username, nats.password) == (service, dotenv[access.nats_password_var(service)])
        # Neither the superuser's nor the operator's credentials reach a service, under any variable.
        leaked = [name for name, value in env.items() if admin in str(value) or operator in str(value)]
        assert not leaked, f"{service} holds the admin's or the operator's password in {leaked}"
        assert dotenv["POSTGRES_USER"] != service
    # The passwords differ per service, so one service's cannot open another's role or user.
    passwords = [dotenv[v(s)] for s in catalog.names for v in (access.db_password_var, access.nats_password_var)]
    assert len(set(passwords)) == len(passwords)


def test_only_the_bootstrap_holds_the_admin_url(compose_services: dict[str, dict[str, Any]],
                                                dotenv: dict[str, str]) -> None:
    holders = [name for name, spec in compose_services.items()
               if any(dotenv["POSTGRES_PASSWORD"] in str(v) for v in (spec.get("environment") or {}).values())]
    assert sorted(holders) == sorted([BOOTSTRAP, "postgres"])
    postgres = compose_services["postgres"]["environment"]
    assert postgres["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"
    assert postgres["POSTGRES_INITDB_ARGS"] == "--auth=scram-sha-256"


def test_compose_bootstrap_covers_every_service(catalog: Catalog, compose_services: dict[str, dict[str, Any]],
                                                dotenv: dict[str, str]) -> None:
    bootstrap = compose_services[BOOTSTRAP]
    assert bootstrap["command"][3:] == catalog.names
    env = bootstrap["environment"]
    assert urllib.parse.urlsplit(env[ADMIN_URL_VAR]).username == dotenv["POSTGRES_USER"]
    # What the bootstrap module will read from that environment: every service's password, accepted.
    assert passwords_from_env(catalog.names, env) == {s: dotenv[access.db_password_var(s)] for s in catalog.names}
    for service in catalog.names:
        assert compose_services[service]["depends_on"][BOOTSTRAP]["condition"] == "service_completed_successfully"


def test_compose_refuses_to_start_without_a_password(tmp_path: Path) -> None:
    """A credential missing from .env stops `docker compose up`, naming it, rather than running unprotected."""
    (tmp_path / "compose.yaml").write_text((REPO_ROOT / "compose.yaml").read_text())
    (tmp_path / ".env").write_text("\n".join(line for line in ENV_FILE.read_text().splitlines()
                                             if not line.startswith("AGENT_NATS_PASSWORD=")))
    result = compose_config(tmp_path)
    assert result.model is None and "AGENT_NATS_PASSWORD" in result.problems


def test_bootstrap_refuses_missing_or_unsafe_passwords() -> None:
    with pytest.raises(BootstrapError, match=r"AGENT_DB_PASSWORD: not set.*CONTEXT_DB_PASSWORD: not 12"):
        # pragma: allowlist nextline secret - fake credential, test input
        passwords_from_env(["agent", "context"], {"CONTEXT_DB_PASSWORD": "a b@c"})


# --- nats-server's config ------------------------------------------------------------------------------


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` one or more."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or token not in ("*", tokens[index]):
            return False
    return len(tokens) == len(wanted)


def test_subject_matching() -> None:
    assert matches("events.a.>", "events.a.b.c") and not matches("events.a.>", "events.a")
    assert matches("$KV.r.*.x", "$KV.r.agent.x") and not matches("$KV.r.*", "$KV.r.agent.x")


def _own_subjects(catalog: Catalog, service: str) -> list[str]:
    (mesh,) = [s for s in catalog.services if s.name == service]
    own = [f"{subjects.EVENT_PREFIX}.{package}.SomethingHappened" for package in mesh.packages]
    own += [f"$KV.protomesh_registry.{service}.replica-1", f"$KV.protomesh_breakers.{service}.x"]
    needs = EVENT_NEEDS.get(service)
    if needs is not None:
        own += [subjects.task_subject(kind) for kind in needs.task_kinds]
    return own


def test_nats_config_denies_cross_service_publish(catalog: Catalog) -> None:
    users = {user.name: user for user, _ in nats_config.users(catalog)}
    assert set(users) == {access.OPERATOR_NATS_USER, *catalog.names}
    assert users[access.OPERATOR_NATS_USER].publish is None  # the operator's tools: everything
    for service in catalog.names:
        allowed = list(users[service].publish or [])
        assert allowed, f"{service} has no publish limits"
        assert all(any(matches(p, s) for p in allowed) for s in _own_subjects(catalog, service)), service
        for other in catalog.names:
            if other == service:
                continue
            for subject in _own_subjects(catalog, other):
                assert not any(matches(p, subject) for p in allowed), f"{service} may publish {other}'s {subject}"
        assert not any(matches(p, "events.protomesh.nobody.v1.X") for p in allowed)
        subscribe = users[service].subscribe
        assert subscribe is not None and not any(p == ">" for p in subscribe)


def test_nats_config_is_what_nats_server_loads(catalog: Catalog, dotenv: dict[str, str]) -> None:
    """The committed file carries every user with a password reference, and nats-server accepts it only when
    every password is in its environment (as compose passes them from .env)."""
    text = NATS_CONF.read_text()
    assert text == nats_config.render(catalog)
    for user, variable in nats_config.users(catalog):
        assert f'"user": "{user.name}",\n' in text or f'"user": "{user.name}",' in text
        assert f'"password": ${variable}' in text
    variables = {variable: dotenv[variable] for _, variable in nats_config.users(catalog)}
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    check = [str(nats_server_binary()), "-t", "-c", str(NATS_CONF)]
    loaded = subprocess.run(check, env={**base, **variables}, capture_output=True, text=True, timeout=30, check=False)
    assert loaded.returncode == 0, loaded.stderr
    missing = {k: v for k, v in variables.items() if k != access.nats_password_var("agent")}
    refused = subprocess.run(check, env={**base, **missing}, capture_output=True, text=True, timeout=30, check=False)
    assert refused.returncode != 0 and access.nats_password_var("agent") in refused.stdout + refused.stderr


# --- Kubernetes ------------------------------------------------------------------------------------------


def _containers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    spec = resource["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def _secret_refs(container: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})}


def test_k8s_services_use_their_own_secret(catalog: Catalog) -> None:
    workloads = {(r["kind"], r["metadata"]["name"]): r for _, r in k8s_resources() if "template" in r.get("spec", {})}
    for service in catalog.names:
        read: set[str] = set()
        for container in _containers(workloads["Deployment", service]):
            secrets = {ref["name"] for ref in _secret_refs(container).values()}
            assert access.ADMIN_SECRET not in secrets, f"{service}/{container['name']} reads the admin's Secret"
            assert not any(s.endswith("-credentials") and s != access.credentials_secret(service) for s in secrets)
            read |= secrets
        assert access.credentials_secret(service) in read, f"{service} never reads its own credentials"
        # Init steps proper (a native sidecar, restartPolicy Always, keeps running beside the service: the
        # certificate renewer of the mTLS work) — only the wait for the service's database role.
        init = [c for c in workloads["Deployment", service]["spec"]["template"]["spec"]["initContainers"]
                if c.get("restartPolicy") != "Always"]
        assert [c["command"][-1] for c in init] == ["--wait"], f"{service} must wait for its role"
    # Only PostgreSQL itself and the bootstrap Job read the admin's Secret.
    readers = {name for (_, name), r in workloads.items() for c in _containers(r)
               if any(ref["name"] == access.ADMIN_SECRET for ref in _secret_refs(c).values())}
    assert readers == {"postgres", JOB}


def test_k8s_bootstrap_and_nats_cover_every_service(catalog: Catalog) -> None:
    resources = {(r["kind"], r["metadata"]["name"]): r for _, r in k8s_resources()}
    (job,) = _containers(resources["Job", JOB])
    assert job["command"][3:] == catalog.names
    refs = _secret_refs(job)
    assert refs[ADMIN_URL_VAR] == {"name": access.ADMIN_SECRET, "key": ADMIN_URL_VAR}
    for service in catalog.names:
        assert refs[access.db_password_var(service)] == {"name": access.credentials_secret(service),
                                                         "key": "DATABASE_PASSWORD"}

    (nats,) = _containers(resources["StatefulSet", "nats"])
    assert nats["args"][:2] == ["-c", nats_config.MOUNT_PATH]
    nats_refs = _secret_refs(nats)
    for _, variable in nats_config.users(catalog):
        assert variable in nats_refs
    configmap = resources["ConfigMap", "nats-config"]
    assert configmap["data"]["nats-server.conf"] == NATS_CONF.read_text()

    postgres_env = {e["name"]: e.get("value") for e in _containers(resources["StatefulSet", "postgres"])[0]["env"]}
    assert postgres_env["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"
    config = yaml.safe_load_all((K8S_DIR / "config.yaml").read_text())
    shared = next(d for d in config if d["kind"] == "ConfigMap")["data"]
    assert "DATABASE_URL" not in shared and "NATS_URL" not in shared, "credentials are per service, not shared"


# --- no secret in clear ------------------------------------------------------------------------------------


def _secret_values(dotenv: dict[str, str]) -> dict[str, str]:
    """Every credential .env holds (passwords, keys, the API-key pepper), by variable name."""
    return {name: value for name, value in dotenv.items()
            if value and name.endswith(("_PASSWORD", "_KEY", "_PEPPER"))}


def _generated_and_compose_files() -> list[Path]:
    """What the generator writes (compose.yaml, every Kubernetes manifest it makes, Envoy's and NATS's config)."""
    k8s = [*sorted((K8S_DIR / "services").glob("*.yaml")), *sorted((K8S_DIR / "access").glob("*.yaml")),
           K8S_DIR / "nats.yaml", K8S_DIR / "envoy.yaml"]
    return [REPO_ROOT / "compose.yaml", *k8s, NATS_CONF, REPO_ROOT / "envoy" / "compose" / "envoy.json"]


def test_no_secret_is_written_in_clear(dotenv: dict[str, str]) -> None:
    """compose.yaml and the generated files only name secrets (${VAR}, secretKeyRef): none holds a value."""
    secrets = _secret_values(dotenv)
    assert {"IDENTITY_ENCRYPTION_KEY", "IDENTITY_APIKEY_PEPPER", "PROTOMESH_ADMIN_PASSWORD",
            "POSTGRES_PASSWORD", access.db_password_var("identity")} <= secrets.keys()
    for path in _generated_and_compose_files():
        text = path.read_text()
        leaked = sorted(name for name, value in secrets.items() if value in text)
        assert not leaked, f"{path.relative_to(REPO_ROOT)} holds the value of {leaked}"


def test_the_leak_check_can_fail(dotenv: dict[str, str], tmp_path: Path) -> None:
    """The check above finds a key pasted into a manifest."""
    secrets = _secret_values(dotenv)
    pasted = (REPO_ROOT / "compose.yaml").read_text().replace(
        "${IDENTITY_APIKEY_PEPPER:?", secrets["IDENTITY_APIKEY_PEPPER"] + "${IDENTITY_APIKEY_PEPPER:?")
    assert [name for name, value in secrets.items() if value in pasted] == ["IDENTITY_APIKEY_PEPPER"]


def test_identity_keys_reach_only_the_identity_service(compose_services: dict[str, dict[str, Any]],
                                                        dotenv: dict[str, str]) -> None:
    """The signing-key cipher key, the API-key pepper and the admin password: one service's, in compose and k8s."""
    identity_secrets = ("IDENTITY_ENCRYPTION_KEY", "IDENTITY_APIKEY_PEPPER", "PROTOMESH_ADMIN_PASSWORD")
    for name, spec in compose_services.items():
        env = spec.get("environment") or {}
        holds = [s for s in identity_secrets if any(dotenv[s] in str(v) for v in env.values())]
        assert holds == (list(identity_secrets) if name == "identity" else []), f"{name} holds {holds}"
    workloads = {r["metadata"]["name"]: r for _, r in k8s_resources() if r["kind"] in ("Deployment", "StatefulSet")}
    for name, workload in workloads.items():
        refs = {ref["name"] for c in _containers(workload) for ref in _secret_refs(c).values()}
        assert ("protomesh-identity" in refs) == (name == "identity"), f"{name} reads the identity Secret"
