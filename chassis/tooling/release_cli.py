"""`protomesh release SERVICE`: hand a blue-green release to the running mesh and follow it;
`--status`, `--abort`; `--kubernetes` prints the same release as kubectl steps instead."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from chassis.tooling.credentials import write_private
from chassis.tooling.release import active_release, read_status, release_dir
from chassis.tooling.release_plan import (
    ABORT_FILE,
    DEFAULT_STEPS,
    FINAL_STATES,
    REQUEST_FILE,
    PlanError,
    ReleaseRequest,
    parse_steps,
)
from chassis.tooling.release_slo import Thresholds
from chassis.tooling.supervisor import read_state

EXIT_PROMOTED, EXIT_NOT_PROMOTED, EXIT_REFUSED = 0, 1, 2
PICK_UP_TIMEOUT = 15.0
"""The supervisor looks for a request every half second; this long without an answer, nobody will."""
GREEN_START_ALLOWANCE = 120.0
"""Seconds the CLI allows for green to start and for the end (stopping a colour) on top of the bake times."""


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `protomesh release`."""
    release = sub.add_parser(
        "release", help="blue-green release of a service with automated rollback (or --status, --abort)",
        description="Start green replicas of SERVICE from the working tree beside the running blue ones, shift "
                    "the gateway's traffic to them in steps, judge each step by green's error rate and p99 against "
                    "blue's, then promote (blue stops) or roll back (green stops) on its own. See docs/release.md.")
    release.add_argument("service", nargs="?", help="the service to release, e.g. agent")
    release.add_argument("--status", action="store_true", help="show the running (or last) release and exit")
    release.add_argument("--abort", action="store_true", help="roll the running release back now")
    release.add_argument("--steps", default=",".join(f"{s:g}" for s in DEFAULT_STEPS),
                         help="percent of traffic on green per step (default: %(default)s)")
    release.add_argument("--bake", type=float, default=30.0, help="seconds each step is watched (default: %(default)s)")
    release.add_argument("--max-bake", type=float, default=0.0,
                         help="seconds a step may wait for --min-requests green calls before it rolls back "
                              "(default: four bakes)")
    release.add_argument("--max-error-rate", type=float, default=Thresholds.max_error_rate,
                         help="green's server errors over its calls that roll back (default: %(default)s)")
    release.add_argument("--p99-ratio", type=float, default=Thresholds.p99_ratio,
                         help="green's p99 may be this many times blue's (default: %(default)s) ...")
    release.add_argument("--p99-slack-ms", type=float, default=Thresholds.p99_slack_ms,
                         help="... and this many ms slower (default: %(default)s)")
    release.add_argument("--min-requests", type=int, default=Thresholds.min_requests,
                         help="green calls a step needs to be judged (default: %(default)s; 0 for a mesh "
                              "without traffic)")
    release.add_argument("--replicas", type=int, default=0, help="green replicas (default: as many as blue)")
    release.add_argument("--module", default="", help="Python module green runs instead of the service's own "
                                                      "(a build under test)")
    release.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                         help="environment for green replicas only (repeatable)")
    release.add_argument("--detach", action="store_true", help="hand the release over and return at once")
    release.add_argument("--kubernetes", action="store_true",
                         help="print the release as kubectl steps against the generated manifests (no mesh needed)")
    release.add_argument("--manifests", type=Path, help="with --kubernetes: the manifests folder "
                                                        "(default: deploy/k8s)")
    release.add_argument("--image", default="", help="with --kubernetes: green's image (default: blue's)")
    release.set_defaults(func=cmd_release)


def cmd_release(args: argparse.Namespace) -> int:
    """Run the chosen form of `protomesh release`."""
    state_dir: Path = args.state_dir
    if args.kubernetes:
        return _kubernetes(args)
    if args.status:
        return _show_status(state_dir)
    if args.abort:
        return _abort(state_dir)
    if not args.service:
        print("protomesh release: give SERVICE (or --status, --abort)", file=sys.stderr)
        return EXIT_REFUSED
    try:
        request = _request(args)
    except PlanError as exc:
        print(f"protomesh release: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    mesh = read_state(state_dir)
    if not mesh:
        print(f"protomesh release: no mesh is running from {state_dir}; start one with `protomesh up`",
              file=sys.stderr)
        return EXIT_REFUSED
    try:
        request.check(sorted(mesh.get("replicas", {})))
    except PlanError as exc:
        print(f"protomesh release: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    running = active_release(state_dir)
    if running:
        print(f"protomesh release: refused, a release of {running['service']} is running (id {running['id']}, "
              f"{running['state']}, step {running['step']}/{len(running['steps'])}); one at a time: wait, or "
              "`protomesh release --abort`", file=sys.stderr)
        return EXIT_REFUSED
    folder = release_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: of two commands at the same moment, one hands its request over
        fd = os.open(folder / REQUEST_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print("protomesh release: refused, another release was just requested; see `protomesh release --status`",
              file=sys.stderr)
        return EXIT_REFUSED
    with os.fdopen(fd, "w") as out:
        out.write(request.to_json())
    print(f"release {request.id} of {request.service} handed to the mesh (supervisor pid {mesh['supervisor_pid']})",
          flush=True)
    if args.detach:
        return EXIT_PROMOTED
    budget = GREEN_START_ALLOWANCE + request.longest_step * len(request.steps)
    return _follow(state_dir, request.id, budget)


def _request(args: argparse.Namespace) -> ReleaseRequest:
    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep:
            raise PlanError(f"--env {item!r}: expected KEY=VALUE")
        env[key] = value
    return ReleaseRequest(
        service=args.service, steps=parse_steps(args.steps), bake_seconds=args.bake, max_bake_seconds=args.max_bake,
        thresholds=Thresholds(args.max_error_rate, args.p99_ratio, args.p99_slack_ms, args.min_requests),
        module=args.module, env=env, replicas=args.replicas)


def _follow(state_dir: Path, release_id: str, budget: float) -> int:
    """Print the release's lines as the supervisor writes them; the exit code says how it ended."""
    shown = 0
    started = time.monotonic()
    deadline = started + budget
    request = release_dir(state_dir) / REQUEST_FILE
    try:
        while time.monotonic() < deadline:
            status = read_status(state_dir)
            if time.monotonic() - started > PICK_UP_TIMEOUT and request.exists() and (
                    status is None or status.get("id") != release_id):
                request.unlink(missing_ok=True)  # nobody will take it: do not leave it to block the next one
                print(f"protomesh release: the mesh's supervisor did not take the release within "
                      f"{PICK_UP_TIMEOUT:.0f}s (a supervisor started before `protomesh release` existed?); "
                      "restart the mesh", file=sys.stderr)
                return EXIT_REFUSED
            if status is not None and status.get("id") == release_id:
                for line in status["events"][shown:]:
                    print(line, flush=True)
                shown = len(status["events"])
                if status["state"] in FINAL_STATES:
                    return _exit_code(status)
            elif not read_state(state_dir):
                print("protomesh release: the mesh stopped", file=sys.stderr)
                return EXIT_NOT_PROMOTED
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("\nthe release goes on in the mesh: `protomesh release --status`, `protomesh release --abort`")
        return EXIT_NOT_PROMOTED
    print(f"protomesh release: no end after {budget:.0f}s; see `protomesh release --status`", file=sys.stderr)
    return EXIT_NOT_PROMOTED


def _exit_code(status: dict[str, Any]) -> int:
    return {"promoted": EXIT_PROMOTED, "refused": EXIT_REFUSED}.get(status["state"], EXIT_NOT_PROMOTED)


def _show_status(state_dir: Path) -> int:
    status = read_status(state_dir)
    if status is None:
        print(f"no release has run in the mesh of {state_dir}")
        return 0
    running = active_release(state_dir) is not None
    print(f"release {status['id']} of {status['service']}: {status['state']}"
          + (f", step {status['step']}/{len(status['steps'])} at {status['share']:g}% green" if running else ""))
    for line in status["events"]:
        print(f"  {line}")
    return 0


def status_lines(state_dir: Path) -> list[str]:
    """What `protomesh status` shows of releases: the running one with its green replicas, or the last one."""
    status = read_status(state_dir)
    if status is None:
        return ["release: none yet (protomesh release SERVICE)"]
    if active_release(state_dir) is None:
        return [f"release: last {status['id']} of {status['service']}: {status['state']} (protomesh release --status)"]
    return [f"release: {status['id']} of {status['service']} running, {status['state']}, step "
            f"{status['step']}/{len(status['steps'])} at {status['share']:g}% on green "
            f"({', '.join(status['green'])}) beside blue ({', '.join(status['blue'])})"]


def _abort(state_dir: Path) -> int:
    running = active_release(state_dir)
    if running is None:
        print("no release is running; nothing to abort", file=sys.stderr)
        return EXIT_REFUSED
    write_private(release_dir(state_dir) / ABORT_FILE, running["id"])
    print(f"asked release {running['id']} of {running['service']} to roll back ...", flush=True)
    return 0 if _follow(state_dir, running["id"], 60.0) != EXIT_REFUSED else EXIT_REFUSED


def _kubernetes(args: argparse.Namespace) -> int:
    from chassis.tooling.release_k8s import KubernetesPlanError, plan_release

    if not args.service:
        print("protomesh release --kubernetes: give SERVICE", file=sys.stderr)
        return EXIT_REFUSED
    try:
        steps = parse_steps(args.steps)
        plan = plan_release(args.service, steps, args.bake, manifests=args.manifests, image=args.image)
    except (PlanError, KubernetesPlanError) as exc:
        print(f"protomesh release: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    print(json.dumps(plan.as_dict(), indent=2))
    return 0
