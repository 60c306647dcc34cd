"""The contracts pass `buf lint`: the workspace's rules from buf.yaml, plus documented types (STYLE.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from chassis.paths import REPO_ROOT

if TYPE_CHECKING:
    from conftest import Buf

TYPE_COMMENT_RULES = ("COMMENT_SERVICE", "COMMENT_RPC", "COMMENT_MESSAGE", "COMMENT_ENUM")
"""STYLE.md: every type is documented with a `//` sentence above it. STANDARD does not check that."""


def lint_config(workspace: Path) -> str:
    """The workspace's own buf.yaml with the comment rules added to its lint rules."""
    config = yaml.safe_load((workspace / "buf.yaml").read_text())
    lint = config.setdefault("lint", {})
    use = list(lint.get("use") or ["STANDARD"])
    lint["use"] = use + [rule for rule in TYPE_COMMENT_RULES if rule not in use]
    return json.dumps(config)


def buf_lint(buf: Buf, workspace: Path) -> list[dict[str, object]]:
    """Findings of `buf lint` on a workspace folder."""
    return buf.run(["lint", "--config", lint_config(workspace)], cwd=workspace)


def test_contracts_pass_buf_lint(buf: Buf) -> None:
    """The repo's contracts follow buf's STANDARD style and document every type."""
    findings = buf_lint(buf, REPO_ROOT)
    assert not findings, "buf lint found style errors in proto/:\n" + buf.format(findings)


BAD_PROTO = """\
syntax = "proto3";

package protomesh.lintprobe.v1;

// Color has no COLOR_UNSPECIFIED = 0 value.
enum Color {
  RED = 0;
}

message Undocumented {
  string id = 1;
}
"""


def test_buf_lint_reports_style_errors(buf: Buf, workspace_copy: Callable[[str], Path]) -> None:
    """Adding an enum without *_UNSPECIFIED and an undocumented message to a copy of the workspace fails lint."""
    workspace = workspace_copy("lint")
    bad = Path("proto/protomesh/lintprobe/v1/probe.proto")
    assert not [f for f in buf_lint(buf, workspace) if f["path"] == str(bad)]

    (workspace / bad).parent.mkdir(parents=True)
    (workspace / bad).write_text(BAD_PROTO)

    rules = {str(f["type"]) for f in buf_lint(buf, workspace) if f["path"] == str(bad)}
    assert {"ENUM_ZERO_VALUE_SUFFIX", "ENUM_VALUE_PREFIX", "COMMENT_MESSAGE"} <= rules, rules
