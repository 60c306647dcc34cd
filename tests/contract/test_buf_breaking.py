"""No breaking change against the contracts on main (`buf breaking`).

Two checks. The whole workspace with buf.yaml's rules (WIRE_JSON): no client of main breaks on the wire or in
JSON. And each major version against its own past (PACKAGE rules, which compare a package only with the
same package on main): within protomesh.agent.v1 no RPC, message or field may go or change, while
protomesh.agent.v2 may differ from v1 in any way (docs/versions.md). A version retired after its sunset is
listed in RETIRED, which is the only way its deletion passes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from chassis.paths import REPO_ROOT

if TYPE_CHECKING:
    from conftest import Buf

MAIN_REFS = ("refs/heads/main", "refs/remotes/origin/main", "HEAD")
"""Where "the contracts on main" are, best first: a checkout without a main branch compares with HEAD."""

GIT_IDENTITY = ("-c", "user.name=contract-test", "-c", "user.email=contract-test@localhost")


@dataclass(frozen=True)
class Against:
    """What `buf breaking` compares with: a buf git input, or the reason there is none."""

    input: str | None
    ref: str


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *GIT_IDENTITY, *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def against_main(repo: Path) -> Against:
    """buf's git input for the contracts on main of the repo at `repo` (its buf.yaml is at the top).

    The commit is resolved here and passed as `ref=<sha>`, so a fresh clone, a detached checkout and
    a worktree (whose refs live in the common git dir) all work the same, offline.
    """
    if shutil.which("git") is None:
        return Against(None, "git is not installed")
    common_dir = _git(repo, "rev-parse", "--path-format=absolute", "--git-common-dir")
    if common_dir.returncode != 0:
        return Against(None, f"{repo} is not a git checkout")
    for ref in MAIN_REFS:
        sha = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if sha.returncode == 0:
            return Against(f"{common_dir.stdout.strip()}#ref={sha.stdout.strip()}", ref)
    return Against(None, "the repository has no commit yet")


def buf_breaking(buf: Buf, workspace: Path, against: str) -> list[dict[str, object]]:
    """Findings of `buf breaking` for the workspace folder against a buf input."""
    return buf.run(["breaking", "--against", against], cwd=workspace)


def test_no_breaking_change_against_main(buf: Buf) -> None:
    """The working tree's contracts are wire- and JSON-compatible with main's."""
    against = against_main(REPO_ROOT)
    if against.input is None:
        pytest.skip(f"nothing to compare with: {against.ref}")
    findings = buf_breaking(buf, REPO_ROOT, against.input)
    assert not findings, (
        f"buf breaking: proto/ breaks clients of {against.ref}. Keep the old field/RPC (deprecate it) "
        "or put the change in a new package version (protomesh.<name>.v2):\n" + buf.format(findings)
    )


PROBE = """\
syntax = "proto3";

package protomesh.breakprobe.v1;

// Probe is a message whose fields the tests change.
message Probe {
  // id names the probe.
  string id = 1;
  // display_name is shown to people.
  string display_name = 2;
  // count counts things.
  int64 count = 3;
  // active tells whether it runs.
  bool active = 4;
}
"""
PROBE_PATH = Path("proto/protomesh/breakprobe/v1/probe.proto")


def _write_probe(workspace: Path, text: str = PROBE) -> None:
    path = workspace / PROBE_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("change", "old", "new", "rule"),
    [
        # Same number and type, so old binary clients still work, but JSON clients send "displayName".
        ("rename a field (JSON-breaking)", "display_name = 2", "title = 2", "FIELD_SAME_JSON_NAME"),
        ("change a field's type (wire-breaking)", "int64 count", "string count", "FIELD_WIRE_JSON_COMPATIBLE_TYPE"),
        (
            "change a field's number (wire-breaking)",
            "active = 4",
            "active = 5",
            "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED",
        ),
    ],
)
def test_buf_breaking_reports_breaking_changes(
    buf: Buf, workspace_copy: Callable[[str], Path], change: str, old: str, new: str, rule: str
) -> None:
    """With the repo's buf.yaml, each kind of breaking change is reported against the original copy."""
    original, changed = workspace_copy("original"), workspace_copy("changed")
    _write_probe(original)
    _write_probe(changed)
    assert buf_breaking(buf, changed, str(original)) == []

    _write_probe(changed, PROBE.replace(old, new))
    rules = {str(f["type"]) for f in buf_breaking(buf, changed, str(original))}
    assert rule in rules, f"{change}: expected {rule}, got {rules}"


def _commit_all(repo: Path, message: str) -> None:
    assert _git(repo, "add", ".").returncode == 0
    committed = _git(repo, "commit", "-q", "-m", message)
    assert committed.returncode == 0, committed.stderr


def test_git_input_catches_a_break_of_main(buf: Buf, workspace_copy: Callable[[str], Path]) -> None:
    """Through buf's git input, a change committed on a branch is compared with main, not with HEAD."""
    repo = workspace_copy("repo")
    _write_probe(repo)
    assert _git(repo, "init", "-q", "-b", "main").returncode == 0
    _commit_all(repo, "contracts")
    assert _git(repo, "checkout", "-q", "-b", "feature").returncode == 0
    _write_probe(repo, PROBE.replace("display_name = 2", "title = 2"))
    _commit_all(repo, "rename a field")

    against = against_main(repo)
    assert against.ref == "refs/heads/main"
    assert against.input is not None
    rules = {str(f["type"]) for f in buf_breaking(buf, repo, against.input)}
    assert "FIELD_SAME_JSON_NAME" in rules, rules


def test_against_main_falls_back_and_skips(tmp_path: Path) -> None:
    """No commit: nothing to compare with; no main: HEAD; then origin/main; then main itself."""
    repo = tmp_path / "repo"
    repo.mkdir()
    assert _git(repo, "init", "-q", "-b", "trunk").returncode == 0
    assert against_main(repo) == Against(None, "the repository has no commit yet")

    (repo / "README.md").write_text("x\n")
    _commit_all(repo, "first")
    assert against_main(repo).ref == "HEAD"
    assert _git(repo, "update-ref", "refs/remotes/origin/main", "HEAD").returncode == 0
    assert against_main(repo).ref == "refs/remotes/origin/main"
    assert _git(repo, "branch", "main").returncode == 0
    assert against_main(repo).ref == "refs/heads/main"
    sha = _git(repo, "rev-parse", "main").stdout.strip()
    assert against_main(repo).input == f"{(repo / '.git').resolve()}#ref={sha}"


# --- each major version against its own past ---------------------------------------------------------

RETIRED: frozenset[str] = frozenset()
"""Packages deleted on purpose after their sunset (their `(protomesh.options.v1.lifecycle)` date), e.g.
"protomesh.agent.v1": their deletion is the one change to them the per-version check lets through."""

_VERSION_DIR = re.compile(r"(?:^|/)(protomesh/[a-z][a-z0-9_]*/v\d+)/")


def per_version_config(workspace: Path) -> str:
    """The workspace's buf.yaml with PACKAGE breaking rules: each package compared with itself on main only."""
    config = yaml.safe_load((workspace / "buf.yaml").read_text())
    config.setdefault("breaking", {})["use"] = ["PACKAGE"]
    return json.dumps(config)


def breaking_by_version(buf: Buf, workspace: Path, against: str) -> dict[str, list[dict[str, object]]]:
    """`buf breaking` findings under PACKAGE rules, by major version (`protomesh.agent.v1`), retired ones left out."""
    by_version: dict[str, list[dict[str, object]]] = {}
    for finding in buf.run(["breaking", "--against", against, "--config", per_version_config(workspace)],
                           cwd=workspace):
        match = _VERSION_DIR.search(str(finding.get("path", "")))
        version = match.group(1).replace("/", ".") if match else "?"
        if version not in RETIRED:
            by_version.setdefault(version, []).append(finding)
    return by_version


def test_each_major_version_keeps_to_its_own_past(buf: Buf) -> None:
    """No RPC, message, field or enum value of a package on main is deleted or changed in the working tree."""
    against = against_main(REPO_ROOT)
    if against.input is None:
        pytest.skip(f"nothing to compare with: {against.ref}")
    broken = breaking_by_version(buf, REPO_ROOT, against.input)
    assert not broken, (
        f"buf breaking (PACKAGE rules) against {against.ref}: a major version changed incompatibly. Put the "
        "change in the next major version (protomesh.<name>.v<N+1>, docs/versions.md):\n"
        + "\n".join(f"{version}:\n{buf.format(findings)}" for version, findings in sorted(broken.items())))


V1_SERVICE = """\
syntax = "proto3";

package protomesh.breakprobe.v1;

// ProbeService serves probes.
service ProbeService {
  // GetProbe returns one probe.
  rpc GetProbe(GetProbeRequest) returns (Probe);
  // StopProbe stops one probe.
  rpc StopProbe(GetProbeRequest) returns (Probe);
}

// GetProbeRequest names a probe.
message GetProbeRequest {
  // id names the probe.
  string id = 1;
}

// Probe is a probe.
message Probe {
  // id names the probe.
  string id = 1;
  // display_name is shown to people.
  string display_name = 2;
  // count counts things.
  int64 count = 3;
}
"""
# The next major version renames, retypes, renumbers and drops what v1 had: none of it concerns v1's clients.
V2_SERVICE = (V1_SERVICE.replace("breakprobe.v1", "breakprobe.v2").replace("StopProbe", "CancelProbe")
              .replace("string display_name = 2", "string title = 3").replace("int64 count = 3", "string count = 2"))


def _write(workspace: Path, version: str, text: str) -> None:
    path = workspace / f"proto/protomesh/breakprobe/{version}/probe_service.proto"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_each_version_is_compared_with_its_own_past_only(buf: Buf, workspace_copy: Callable[[str], Path]) -> None:
    """A new v2 unlike v1 is no finding; a change inside v2, or inside v1, is a finding of that version alone."""
    original, changed = workspace_copy("original"), workspace_copy("changed")
    _write(original, "v1", V1_SERVICE)
    _write(changed, "v1", V1_SERVICE)
    _write(changed, "v2", V2_SERVICE)
    assert breaking_by_version(buf, changed, str(original)) == {}

    _write(original, "v2", V2_SERVICE)
    # Within v1: deleting an RPC, which WIRE_JSON alone lets through; within v2: a field's type.
    _write(changed, "v1", V1_SERVICE.replace("  // StopProbe stops one probe.\n"
                                             "  rpc StopProbe(GetProbeRequest) returns (Probe);\n", ""))
    _write(changed, "v2", V2_SERVICE.replace("string count = 2", "int64 count = 2"))
    found = breaking_by_version(buf, changed, str(original))
    assert set(found) == {"protomesh.breakprobe.v1", "protomesh.breakprobe.v2"}, found
    assert {str(f["type"]) for f in found["protomesh.breakprobe.v1"]} == {"RPC_NO_DELETE"}
    assert "FIELD_SAME_TYPE" in {str(f["type"]) for f in found["protomesh.breakprobe.v2"]}
    assert buf_breaking(buf, changed, str(original)) != []  # the WIRE_JSON check sees v2's retyped field too
