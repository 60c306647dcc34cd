"""Fixtures of the contract tests: the buf binary, and throw-away copies of the proto workspace."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from chassis.paths import REPO_ROOT

WORKSPACE_PARTS = ("buf.yaml", "proto", "third_party")
"""What buf needs to build the workspace: its config, our contracts and the vendored protos."""

BUF_TIMEOUT_SECONDS = 60


def _find_buf() -> Path | None:
    beside_python = Path(sys.executable).parent / "buf"
    if beside_python.is_file():
        return beside_python
    on_path = shutil.which("buf")
    return Path(on_path) if on_path else None


Finding = dict[str, object]
"""One buf finding as buf prints it with `--error-format json` (path, start_line, type, message)."""


@dataclass(frozen=True)
class Buf:
    """The buf binary, run for its findings."""

    path: Path

    def run(self, args: list[str], cwd: Path) -> list[Finding]:
        """Run a buf check in cwd and return its findings (empty when it passes).

        Anything else buf prints when it fails (a config or build error) fails the test, so a broken
        tool never reads as "no findings".
        """
        completed = subprocess.run(
            [str(self.path), *args, "--error-format", "json"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=BUF_TIMEOUT_SECONDS,
            check=False,
        )
        if completed.returncode == 0:
            return []
        findings = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
        if not findings:
            pytest.fail(
                f"`buf {' '.join(args)}` failed without findings (exit {completed.returncode}):\n"
                f"{completed.stdout}{completed.stderr}"
            )
        return findings

    @staticmethod
    def format(findings: list[Finding]) -> str:
        """One line per finding: file:line: RULE message."""
        return "\n".join(
            f"  {f.get('path', '?')}:{f.get('start_line', '?')}: {f.get('type', '?')} {f.get('message', '')}"
            for f in findings
        )


@pytest.fixture(scope="session")
def buf() -> Buf:
    """The buf binary installed with the project (the `buf-bin` wheel puts it next to python)."""
    path = _find_buf()
    if path is None:
        # Failing, not skipping: a contract check that quietly does not run protects nothing.
        pytest.fail("buf not found next to python or on PATH; install the project: pip install -e '.[test]'")
    return Buf(path)


@pytest.fixture
def workspace_copy(tmp_path: Path) -> Callable[[str], Path]:
    """Factory: a fresh copy of the repo's buf workspace under tmp_path/<name>."""

    def make(name: str) -> Path:
        target = tmp_path / name
        target.mkdir()
        for part in WORKSPACE_PARTS:
            source = REPO_ROOT / part
            if source.is_dir():
                shutil.copytree(source, target / part, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, target / part)
        return target

    return make
