"""The same blue-green release on Kubernetes, as a plan of kubectl commands rendered from the generated
manifests (deploy/k8s/services/<name>.yaml): two Deployments and the Service's selector.

How traffic moves there: the generated Service is headless and selects `app.kubernetes.io/name`, so
DNS hands Envoy every ready pod of both colours and Envoy balances per request; a step's share is
green's pods over all pods (with few pods a small percentage rounds up: the plan prints the share a
step really gets). At 100 % the Service's selector adds the colour label only green's pods carry, so
blue leaves rotation at once, before it is scaled down. Rolling back deletes green; blue never
stopped serving. Each step is watched with the PromQL the plan names (the replicas' own metrics).
"""

from __future__ import annotations

import copy
import json
import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chassis.paths import REPO_ROOT

NAME_LABEL = "app.kubernetes.io/name"
COLOUR_LABEL = "protomesh.dev/colour"
"""Only green's pods carry it: the generated Deployment's selector is immutable, so blue stays unlabelled."""
NAMESPACE = "protomesh"
SERVER_ERRORS = "UNKNOWN|INTERNAL|UNAVAILABLE|DEADLINE_EXCEEDED|DATA_LOSS|UNIMPLEMENTED"


class KubernetesPlanError(ValueError):
    """The manifests do not hold what a release needs (naming what is missing)."""


@dataclass(frozen=True)
class Action:
    """One kubectl command of the plan, and why it is there."""

    why: str
    argv: tuple[str, ...]
    stdin: dict[str, Any] | None = None
    """A manifest piped to `kubectl apply -f -`."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the command as a shell line, the manifest as it is."""
        shown: dict[str, Any] = {"why": self.why, "command": shlex.join(self.argv)}
        if self.stdin is not None:
            shown["stdin"] = self.stdin
        return shown


@dataclass(frozen=True)
class Step:
    """One traffic step: green's replica count, the share that gives, the bake and what is watched."""

    percent: float
    green_replicas: int
    blue_replicas: int
    actions: tuple[Action, ...]
    watch: dict[str, str]

    @property
    def effective_share(self) -> float:
        """Green's share of ready pods (what the headless Service really gives)."""
        return self.green_replicas / (self.green_replicas + self.blue_replicas)


@dataclass(frozen=True)
class KubernetesPlan:
    """The whole release: start, steps, and what promotion and rollback do."""

    service: str
    blue: dict[str, Any]
    green: dict[str, Any]
    service_manifest: dict[str, Any]
    start: tuple[Action, ...]
    steps: tuple[Step, ...]
    promote: tuple[Action, ...]
    rollback: tuple[Action, ...]
    bake_seconds: float
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """What `protomesh release --kubernetes` prints."""
        return {
            "service": self.service, "bake_seconds": self.bake_seconds, "notes": self.notes,
            "start": [a.as_dict() for a in self.start],
            "steps": [{"percent": s.percent, "effective_percent": round(s.effective_share * 100, 1),
                       "green_replicas": s.green_replicas, "blue_replicas": s.blue_replicas,
                       "actions": [a.as_dict() for a in s.actions], "watch": s.watch} for s in self.steps],
            "promote": [a.as_dict() for a in self.promote],
            "rollback": [a.as_dict() for a in self.rollback],
        }


def load_manifests(service: str, manifests: Path | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The service's generated Deployment and Service."""
    path = (manifests or REPO_ROOT / "deploy" / "k8s") / "services" / f"{service}.yaml"
    if not path.is_file():
        raise KubernetesPlanError(f"no generated manifest {path} for service {service!r} (run `protomesh gen`)")
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    found = {(d.get("kind"), d.get("metadata", {}).get("name")): d for d in documents}
    deployment, svc = found.get(("Deployment", service)), found.get(("Service", service))
    if deployment is None or svc is None:
        raise KubernetesPlanError(f"{path} must hold a Deployment and a Service named {service}")
    return deployment, svc


def green_deployment(blue: dict[str, Any], image: str = "") -> dict[str, Any]:
    """Blue's Deployment as `<name>-green`: its pods carry the colour label, its selector asks for it."""
    green = copy.deepcopy(blue)
    name = blue["metadata"]["name"]
    green["metadata"]["name"] = f"{name}-green"
    green["metadata"].setdefault("labels", {})[COLOUR_LABEL] = "green"
    green["spec"]["replicas"] = 0
    green["spec"]["selector"]["matchLabels"][COLOUR_LABEL] = "green"
    green["spec"]["template"]["metadata"]["labels"][COLOUR_LABEL] = "green"
    if image:
        for container in green["spec"]["template"]["spec"]["containers"]:
            if container["name"] == name:
                container["image"] = image
    return green


def green_for(percent: float, blue_replicas: int) -> int:
    """Green pods beside `blue_replicas` so green's share is at least `percent` (at least one pod)."""
    if percent >= 100:
        return blue_replicas
    share = percent / 100
    return max(1, min(blue_replicas, math.ceil(share * blue_replicas / (1 - share))))


def _kubectl(*args: str) -> tuple[str, ...]:
    return ("kubectl", "-n", NAMESPACE, *args)


def plan_release(service: str, steps: Sequence[float], bake_seconds: float, *, manifests: Path | None = None,
                 image: str = "") -> KubernetesPlan:
    """The kubectl plan of releasing `service` in `steps` (percent), judged over `bake_seconds` each."""
    blue, svc = load_manifests(service, manifests)
    if svc["spec"].get("selector") != blue["spec"]["selector"]["matchLabels"]:
        raise KubernetesPlanError(f"the Service {service} must select exactly its Deployment's pods "
                                  f"({blue['spec']['selector']['matchLabels']})")
    green = green_deployment(blue, image)
    green_name = green["metadata"]["name"]
    replicas = int(blue["spec"].get("replicas", 1))
    window = f"{max(int(bake_seconds), 30)}s"  # rate() needs a few scrapes whatever the bake time
    pods = f'pod=~"{green_name}-.*"'
    watch = {
        "green_error_rate": (f'sum(rate(protomesh_rpc_requests_total{{service="{service}",{pods},'
                             f'code=~"{SERVER_ERRORS}"}}[{window}])) / sum(rate(protomesh_rpc_requests_total'
                             f'{{service="{service}",{pods}}}[{window}]))'),
        "green_p99": (f'histogram_quantile(0.99, sum by (le) (rate(protomesh_rpc_duration_seconds_bucket'
                      f'{{service="{service}",{pods}}}[{window}])))'),
        "blue_p99": (f'histogram_quantile(0.99, sum by (le) (rate(protomesh_rpc_duration_seconds_bucket'
                     f'{{service="{service}",pod!~"{green_name}-.*"}}[{window}])))'),
    }
    start = (Action("green's Deployment beside blue's, no pods yet", _kubectl("apply", "-f", "-"), green),)
    planned = []
    for percent in steps:
        count = green_for(percent, replicas)
        actions = [Action(f"{count} green pod(s) beside {replicas} blue", _kubectl("scale", f"deployment/{green_name}",
                                                                                   f"--replicas={count}")),
                   Action("wait until they are ready (the headless Service then lists them)",
                          _kubectl("rollout", "status", f"deployment/{green_name}", "--timeout=180s"))]
        if percent >= 100:
            selector = {**svc["spec"]["selector"], COLOUR_LABEL: "green"}
            actions.append(Action("only green's pods behind the Service (blue's lack the colour label)",
                                  _kubectl("patch", "service", service, "--type=merge", "-p",
                                           json.dumps({"spec": {"selector": selector}}, sort_keys=True))))
        planned.append(Step(percent, count, 0 if percent >= 100 else replicas, tuple(actions), watch))
    promote = (Action("blue stops: its pods are no longer behind the Service",
                      _kubectl("scale", f"deployment/{blue['metadata']['name']}", "--replicas=0")),)
    rollback = (
        Action("the Service selects by name only again (blue's pods)",
               _kubectl("patch", "service", service, "--type=merge", "-p",
                        json.dumps({"spec": {"selector": svc["spec"]["selector"]}}, sort_keys=True))),
        Action("green goes away", _kubectl("delete", "deployment", green_name, "--wait=false")),
    )
    notes = [f"a step's share is green's ready pods over all ({replicas} blue): see effective_percent",
             f"roll back when green_error_rate exceeds the threshold or green_p99 exceeds blue_p99's limit "
             f"during any step's {bake_seconds:g}s bake",
             "migrations must be expand-then-contract safe (docs/release.md): both colours share the schema"]
    return KubernetesPlan(service, blue, green, svc, start, tuple(planned), promote, rollback, bake_seconds, notes)
