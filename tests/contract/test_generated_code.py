"""gen/ must be exactly what chassis.tooling.codegen makes from proto/ today: stale generated code fails."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chassis.paths import GEN_DIR
from chassis.tooling.codegen import generate

IGNORED_PARTS = {"__pycache__"}
"""Python's bytecode caches may sit in gen/ after an import; they are not generated code."""

FIX = "gen/ is stale: run scripts/gen_protos and commit gen/."


def _files(root: Path) -> dict[str, Path]:
    return {
        str(path.relative_to(root)): path
        for path in root.rglob("*")
        if path.is_file() and not IGNORED_PARTS.intersection(path.relative_to(root).parts)
    }


def tree_differences(expected: Path, actual: Path) -> list[str]:
    """How `actual` differs from `expected`, byte for byte: one line per missing, extra or changed file."""
    want, have = _files(expected), _files(actual)
    problems = [f"missing: {name}" for name in sorted(want.keys() - have.keys())]
    problems += [f"extra (no proto makes it): {name}" for name in sorted(have.keys() - want.keys())]
    problems += [
        f"differs: {name}"
        for name in sorted(want.keys() & have.keys())
        if want[name].read_bytes() != have[name].read_bytes()
    ]
    return problems


@pytest.fixture(scope="module")
def fresh_gen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gen/ as chassis.tooling.codegen makes it now, in a temporary folder."""
    out = tmp_path_factory.mktemp("fresh") / "gen"
    generate(out)
    return out


def test_gen_matches_the_contracts(fresh_gen: Path) -> None:
    """Every file in gen/ is byte-identical to a fresh generation, and none is missing or extra."""
    problems = tree_differences(fresh_gen, GEN_DIR)
    assert not problems, FIX + "\n" + "\n".join(problems)


def test_stale_gen_is_detected(fresh_gen: Path, tmp_path: Path) -> None:
    """The comparison catches a changed, a missing and an extra file (so the check above can fail)."""
    stale = tmp_path / "gen"
    shutil.copytree(fresh_gen, stale)
    assert tree_differences(fresh_gen, stale) == []

    pyi_files = sorted(stale.rglob("*_pb2.pyi"))
    changed, removed = pyi_files[0], pyi_files[-1]
    changed.write_bytes(changed.read_bytes() + b"\n")
    removed.unlink()
    (stale / "protomesh" / "leftover_pb2.py").write_text("# from a proto that was deleted\n")
    (stale / "protomesh" / "__pycache__").mkdir()
    (stale / "protomesh" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")

    problems = tree_differences(fresh_gen, stale)
    assert problems == [
        f"missing: {removed.relative_to(stale)}",
        "extra (no proto makes it): protomesh/leftover_pb2.py",
        f"differs: {changed.relative_to(stale)}",
    ]
