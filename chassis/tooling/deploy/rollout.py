"""Deploy an environment to Kubernetes: its overlay, then each service released blue-green, rolled back on a breach.

`scripts/deploy ENV --image IMAGE` (what the CI pipeline and a person run alike):

1. builds deploy/overlays/ENV with kubectl's kustomize and applies what is not a service's Deployment (config,
   NetworkPolicies, autoscalers, budgets, the gateway, NATS, PostgreSQL), plus a service's Deployment the
   cluster does not have yet (a first deploy has no blue to release against);
2. for every service, asks `protomesh release SERVICE --kubernetes --image IMAGE` for its plan (against the
   environment's own manifests) and runs it: green beside blue, the traffic steps, each step baked and judged
   on the plan's PromQL when PROMETHEUS_URL is set, then promotion; any failure runs the plan's rollback;
3. `--rollback` runs only the rollback of each service's plan (the pipeline's step after a failed job).

`--dry-run` prints the kubectl commands instead of running them (tests/infra/test_pipeline.py reads them).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from chassis.paths import REPO_ROOT
from chassis.tooling.catalog import load_catalog
from chassis.tooling.deploy.environments import ENVIRONMENTS, ROOT


class RolloutFailed(RuntimeError):
    """A step of the rollout failed (a command, a rollout timeout, or the SLO)."""


class Runner:
    """Runs (or, dry, prints) kubectl commands."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run

    def run(self, argv: Sequence[str], stdin: Any = None) -> str:
        """Run one command; RolloutFailed with its output when it fails."""
        shown = shlex.join(argv) + (f" <<< {stdin['kind']}/{stdin['metadata']['name']}" if stdin is not None else "")
        print(f"$ {shown}", flush=True)
        if self.dry_run:
            return ""
        done = subprocess.run(list(argv), input=json.dumps(stdin) if stdin is not None else None,  # noqa: S603 kubectl argv from the plan, no shell
                              capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise RolloutFailed(f"{shown} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def exists(self, kind: str, name: str, namespace: str) -> bool:
        """Whether the cluster has the object (dry: assume it does, so a dry run shows the release)."""
        if self.dry_run:
            return True
        done = subprocess.run(["kubectl", "-n", namespace, "get", kind, name], capture_output=True,  # noqa: S603 S607 fixed argv
                              timeout=60, check=False)
        return done.returncode == 0


def build_overlay(env: str, image: str) -> list[dict[str, Any]]:
    """The environment's objects, with every protomesh container on `image`."""
    with tempfile.TemporaryDirectory(dir=REPO_ROOT / "deploy") as work:
        # A throw-away kustomization over the overlay: the image is the pipeline's, never written into the tree.
        relative = os.path.relpath(REPO_ROOT / ROOT / env, work)
        name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
        Path(work, "kustomization.yaml").write_text(json.dumps({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": [relative],
            "images": [{"name": "protomesh", "newName": name, "newTag": tag}]}))
        done = subprocess.run(["kubectl", "kustomize", work], capture_output=True, text=True, timeout=120,  # noqa: S603 S607 fixed argv
                              check=False)
    if done.returncode != 0:
        raise RolloutFailed(f"kustomize build of {env} failed: {done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def release_plan(service: str, manifests: Path, image: str, steps: str, bake: float) -> dict[str, Any]:
    """`protomesh release SERVICE --kubernetes`: the same command a person runs, as JSON."""
    argv = [sys.executable, "-m", "chassis.tooling.cli", "release", service, "--kubernetes", "--manifests",
            str(manifests), "--image", image, "--steps", steps, "--bake", str(bake)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603 this CLI
    if done.returncode != 0:
        raise RolloutFailed(f"protomesh release {service} --kubernetes: {done.stderr.strip()}")
    plan: dict[str, Any] = json.loads(done.stdout)
    return plan


def _run_actions(runner: Runner, actions: list[dict[str, Any]]) -> None:
    for action in actions:
        print(f"# {action['why']}", flush=True)
        runner.run(shlex.split(action["command"]), action.get("stdin"))


def judge(prometheus: str, watch: dict[str, str], max_error_rate: float, p99_ratio: float) -> str | None:
    """Why the step fails its SLO (error rate, p99 against blue's), or None; read from Prometheus."""
    values = {}
    for name, query in watch.items():
        url = f"{prometheus.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
        with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 the operator's Prometheus URL
            result = json.load(reply)["data"]["result"]
        values[name] = float(result[0]["value"][1]) if result else 0.0
    print(f"  SLO figures: {json.dumps(values)}", flush=True)
    if values.get("green_error_rate", 0.0) > max_error_rate:
        return f"green's error rate {values['green_error_rate']:.3f} > {max_error_rate}"
    if values.get("blue_p99") and values.get("green_p99", 0.0) > values["blue_p99"] * p99_ratio:
        return f"green's p99 {values['green_p99']:.3f}s > {p99_ratio} x blue's {values['blue_p99']:.3f}s"
    return None


def rollout(args: argparse.Namespace) -> int:
    """Deploy (or roll back) every service of the environment; 0 when it is done, 1 when it rolled back."""
    runner = Runner(args.dry_run)
    objects = build_overlay(args.environment, args.image)
    services = [s for s in load_catalog().names if not args.services or s in args.services.split(",")]
    manifests = Path(tempfile.mkdtemp(prefix="protomesh-rollout-"))
    (manifests / "services").mkdir()
    for service in services:
        own = [o for o in objects if o.get("metadata", {}).get("name") == service
               and o["kind"] in ("Deployment", "Service")]
        (manifests / "services" / f"{service}.yaml").write_text("---\n".join(yaml.safe_dump(o) for o in own))
    plans = {s: release_plan(s, manifests, args.image, args.steps, args.bake) for s in services}
    if args.rollback:
        for service, plan in plans.items():
            print(f"== rolling {service} back", flush=True)
            _run_actions(runner, plan["rollback"])
        return 0
    for obj in objects:
        deployment = obj["kind"] == "Deployment" and obj["metadata"]["name"] in services
        if not deployment or not runner.exists("deployment", obj["metadata"]["name"], obj["metadata"]["namespace"]):
            runner.run(["kubectl", "apply", "-f", "-"], obj)
    for service, plan in plans.items():
        print(f"== releasing {service} ({args.environment}, {args.image})", flush=True)
        try:
            _run_actions(runner, plan["start"])
            for step in plan["steps"]:
                print(f"-- {service}: {step['percent']}% (effectively {step['effective_percent']}%)", flush=True)
                _run_actions(runner, step["actions"])
                if not args.dry_run:
                    time.sleep(plan["bake_seconds"])
                if args.prometheus and not args.dry_run:
                    breach = judge(args.prometheus, step["watch"], args.max_error_rate, args.p99_ratio)
                    if breach:
                        raise RolloutFailed(breach)
            _run_actions(runner, plan["promote"])
        except RolloutFailed as exc:
            print(f"!! {service}: {exc}; rolling back", flush=True)
            _run_actions(runner, plan["rollback"])
            return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of scripts/deploy."""
    parser = argparse.ArgumentParser(prog="scripts/deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("environment", choices=[e.name for e in ENVIRONMENTS])
    parser.add_argument("--image", required=True, help="the image every service runs, e.g. ghcr.io/o/protomesh:1.2.3")
    parser.add_argument("--services", help="only these services, comma-separated (default: all)")
    parser.add_argument("--steps", default="5,25,50,100", help="percent on green per step (default: %(default)s)")
    parser.add_argument("--bake", type=float, default=60.0, help="seconds each step is watched (default: %(default)s)")
    parser.add_argument("--prometheus", default=os.environ.get("PROMETHEUS_URL", ""),
                        help="Prometheus URL the steps are judged on (default: $PROMETHEUS_URL; unset: not judged)")
    parser.add_argument("--max-error-rate", type=float, default=0.01)
    parser.add_argument("--p99-ratio", type=float, default=1.5)
    parser.add_argument("--rollback", action="store_true", help="run only each service's rollback")
    parser.add_argument("--dry-run", action="store_true", help="print the kubectl commands, run none")
    args = parser.parse_args(argv)
    try:
        return rollout(args)
    except RolloutFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
