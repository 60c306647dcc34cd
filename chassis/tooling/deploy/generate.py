"""Render every deploy file from the catalog and the deploy.toml files, compare them with the tree, write them.

Rendering never touches the disk except to read; `stale_files` and `write_files` take its result, so the
contract test and `protomesh gen --check` compare exactly what `protomesh gen` would write.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from chassis.paths import DESCRIPTOR_SET, REPO_ROOT
from chassis.tooling.catalog import Catalog, MeshService, load_catalog
from chassis.tooling.deploy import compose, environments, k8s_access, kubernetes, nats_config, observability
from chassis.tooling.deploy.declaration import FILE_NAME, DeclarationError, ServiceDeploy, load_declaration
from chassis.tooling.deploy.derived import derive
from chassis.tooling.deploy.regions import RegionError, fill_regions
from chassis.tooling.envoy_config import COMPOSE_UPSTREAM_TLS, compose_envoy_config, sds_documents

ENVOY_COMPOSE = "envoy/compose/envoy.json"
ENVOY_COMPOSE_SDS = "envoy/compose/sds"
"""The gateway's SDS files (which certificate files to load and watch), mounted at /etc/envoy/sds."""
GENERATED_FOLDERS = (kubernetes.FOLDER, k8s_access.FOLDER, *environments.FOLDERS)
"""Folders holding nothing but generated files: a file in them that rendering does not produce is stale."""
FIX = "run scripts/gen_protos (or .venv/bin/protomesh gen) and commit the result"

# A DNS-1123 label: compose and Kubernetes use the service name as a host name and an object name.
_DNS_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")


class GenError(ValueError):
    """Something a person must fix before the deploy files can be generated."""


def load_declarations(catalog: Catalog, root: Path = REPO_ROOT) -> dict[str, ServiceDeploy]:
    """Every catalog service's deploy.toml (the defaults where there is none)."""
    deploys = {s.name: load_declaration(s.name, root / "services" / s.name / FILE_NAME) for s in catalog}
    # A declaration no contract matches is most likely a misnamed folder; silently ignoring it would hide that.
    orphans = sorted(p.parent.name for p in (root / "services").glob(f"*/{FILE_NAME}") if p.parent.name not in deploys)
    if orphans:
        raise GenError(", ".join(f"services/{name}/{FILE_NAME}" for name in orphans) + ": no contract declares "
                       f"its package protomesh.<name>.v1; known services: {', '.join(catalog.names)}")
    return deploys


def render(catalog: Catalog, root: Path = REPO_ROOT,
           deploys: Mapping[str, ServiceDeploy] | None = None) -> dict[str, str]:
    """Every generated file's text by path relative to `root` (whose hand-written parts it reads)."""
    services = catalog.services
    _check_names(services)
    try:
        chosen = derive(catalog, deploys if deploys is not None else load_declarations(catalog, root))
    except ValueError as exc:
        raise GenError(str(exc)) from None
    out = kubernetes.files(services, chosen)
    out.update(environments.files(services, chosen))  # deploy/overlays: dev, staging, production
    nats_conf = nats_config.render(catalog)
    out[nats_config.FILE] = nats_conf
    out.update(k8s_access.files(services, nats_conf))
    out[ENVOY_COMPOSE] = json.dumps(compose_envoy_config(catalog=catalog), indent=2) + "\n"
    for name, text in sds_documents(COMPOSE_UPSTREAM_TLS).items():
        out[f"{ENVOY_COMPOSE_SDS}/{name}"] = text
    for path, regions in (
        (compose.FILE, compose.regions(services, chosen)),
        (k8s_access.NATS_MANIFEST, k8s_access.nats_regions(services, nats_conf)),
        (observability.PROMETHEUS, observability.prometheus_regions(services)),
        (observability.ALERTS, observability.alert_regions(services)),
    ):
        source = root / path
        if not source.is_file():
            raise GenError(f"{path} is missing: it is written by hand around its generated regions")
        out[path] = fill_regions(source.read_text(), regions, where=path)
    return dict(sorted(out.items()))


def stale_files(root: Path, rendered: Mapping[str, str]) -> list[str]:
    """One line per file under `root` that differs from `rendered`, is missing, or should not exist."""
    problems = []
    for path, text in rendered.items():
        target = root / path
        if not target.is_file():
            problems.append(f"missing: {path}")
        elif target.read_text() != text:
            problems.append(f"differs: {path}")
    problems += [f"extra (no service makes it): {path}" for path in _extras(root, rendered)]
    return problems


def write_files(root: Path, rendered: Mapping[str, str]) -> list[str]:
    """Write what changed, delete what no service makes any more; return the paths touched."""
    touched = []
    for path, text in rendered.items():
        target = root / path
        if not target.is_file() or target.read_text() != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            touched.append(path)
    for path in _extras(root, rendered):
        (root / path).unlink()
        touched.append(path)
    return touched


def run_gen(*, check: bool, root: Path = REPO_ROOT, descriptor_set: Path = DESCRIPTOR_SET) -> int:
    """`protomesh gen [--check]`: 0 when the files are (now) fresh, 1 when --check finds stale ones, 2 on errors."""
    try:
        rendered = render(load_catalog(descriptor_set), root)
    except (GenError, DeclarationError, RegionError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if check:
        problems = stale_files(root, rendered)
        if problems:
            print(f"stale deploy files ({FIX}):\n  " + "\n  ".join(problems), file=sys.stderr)
            return 1
        print(f"{len(rendered)} deploy files are up to date", file=sys.stderr)
        return 0
    touched = write_files(root, rendered)
    print(f"deploy files: {len(touched)} of {len(rendered)} rewritten" + "".join(f"\n  {p}" for p in touched),
          file=sys.stderr)
    return 0


def _extras(root: Path, rendered: Mapping[str, str]) -> list[str]:
    found = (p for folder in GENERATED_FOLDERS if (root / folder).is_dir() for p in (root / folder).iterdir())
    return sorted(rel for p in found if p.is_file() and (rel := p.relative_to(root).as_posix()) not in rendered)


def _check_names(services: Sequence[MeshService]) -> None:
    bad = [s for s in services if not _DNS_LABEL.match(s.name)]
    if bad:
        raise GenError(", ".join(f"{s.packages[0]}: {s.name!r}" for s in bad) + " cannot name a compose service "
                       "or a Kubernetes object (lower-case letters and digits only, no '_'); rename the package")
