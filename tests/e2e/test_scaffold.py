"""A newcomer's path, proven: scaffold a service in a copy of the repo, regenerate, start a mesh with
it, and call it through the gateway over REST and gRPC. Nothing else is edited by hand."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chassis.paths import REPO_ROOT

NAME = "orders"

# Runs inside the copy: a mesh with only the new service (and identity, which every mesh runs), then one
# REST and one gRPC call (grpcurl, through the gateway's reflection) as the local admin — printed as JSON
# for the test to read.
DRIVER = """
import json, subprocess, sys, urllib.request
from chassis.tooling.mesh_testing import running_mesh
with running_mesh(replicas=1, only=[sys.argv[1]]) as mesh:
    request = urllib.request.Request(f"http://{mesh.gateway}/v1/{sys.argv[1]}/info", headers=mesh.auth_headers())
    with urllib.request.urlopen(request, timeout=10) as reply:
        rest = json.loads(reply.read())
    grpc = subprocess.run([sys.argv[2], "-plaintext", "-H", f"authorization: Bearer {mesh.token()}", "-d", "{}",
                           mesh.gateway,
                           f"protomesh.{sys.argv[1]}.v1.{sys.argv[1].capitalize()}Service/GetInfo"],
                          capture_output=True, text=True, timeout=30)
    print(json.dumps({"rest": rest, "grpc": grpc.stdout, "grpc_error": grpc.stderr}))
"""


def _copy_repo(target: Path) -> None:
    """The work tree as git sees it (tracked and untracked, ignored files left out)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO_ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        source = REPO_ROOT / rel
        if source.is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / rel)


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    root = tmp_path_factory.mktemp("newcomer") / "repo"
    _copy_repo(root)
    # The copy's own packages win over the editable install of the real repo.
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{root / 'gen'}"}
    yield root, env
    shutil.rmtree(root, ignore_errors=True)


def _run(root: Path, env: dict[str, str], *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_a_scaffolded_service_answers_through_the_gateway(scaffolded: tuple[Path, dict[str, str]]) -> None:
    root, env = scaffolded
    made = _run(root, env, "-m", "chassis.tooling.cli", "new-service", NAME)
    assert made.returncode == 0, made.stderr
    assert "scripts/gen_protos" in made.stdout

    # What scripts/gen_protos runs (its set-up step would build a second venv in the copy).
    for step in (["-m", "chassis.tooling.codegen"], ["-m", "chassis.tooling.cli", "gen"]):
        done = _run(root, env, *step)
        assert done.returncode == 0, f"{step}: {done.stdout}{done.stderr}"

    # The scaffold's own in-process test passes as written.
    tested = _run(root, env, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"services/{NAME}/tests")
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]

    ran = _run(root, env, "-c", DRIVER, NAME, str(Path(sys.executable).parent / "grpcurl"))
    assert ran.returncode == 0, ran.stderr[-4000:]
    answers = json.loads(ran.stdout.strip().splitlines()[-1])
    assert answers["rest"]["info"]["name"] == NAME
    assert answers["rest"]["info"]["grpc_services"] == [f"protomesh.{NAME}.v1.OrdersService"]
    assert json.loads(answers["grpc"])["info"]["name"] == NAME, answers["grpc_error"]


def test_the_scaffold_refuses_a_name_it_cannot_use(scaffolded: tuple[Path, dict[str, str]]) -> None:
    root, env = scaffolded
    for bad, says in (("Orders", "lowercase"), ("common", "reserved"), ("agent", "already exists")):
        refused = _run(root, env, "-m", "chassis.tooling.cli", "new-service", bad)
        assert refused.returncode == 2 and says in refused.stderr, refused.stderr
