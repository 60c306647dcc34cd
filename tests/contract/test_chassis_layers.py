"""The chassis has two parts: what a replica loads (the runtime) and the operator's tooling.

The runtime must import nothing from `chassis.tooling`: a replica should not carry the supervisor,
Envoy's config generator or the infrastructure processes, and a change to the tooling should not be
able to break a running service.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from chassis.paths import REPO_ROOT

CHASSIS = REPO_ROOT / "chassis"


def runtime_modules() -> list[Path]:
    return sorted(p for p in CHASSIS.rglob("*.py") if "tooling" not in p.relative_to(CHASSIS).parts)


def tooling_imports(path: Path) -> list[str]:
    """Every `chassis.tooling` module a file imports, at any depth (lazy imports inside functions too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("chassis.tooling")]
        elif isinstance(node, ast.ImportFrom) and node.module and (
            node.module.startswith("chassis.tooling")
            or (node.module == "chassis" and any(a.name == "tooling" for a in node.names))
        ):
            found.append(node.module)
    return found


def test_runtime_files_never_import_tooling() -> None:
    offenders = {str(p.relative_to(REPO_ROOT)): tooling_imports(p) for p in runtime_modules()}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_scan_sees_a_tooling_import(tmp_path: Path) -> None:
    # The check above can fail: a file with a lazy tooling import is caught.
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from chassis.tooling.supervisor import Mesh\n    return Mesh\n")
    assert tooling_imports(bad) == ["chassis.tooling.supervisor"]


def test_a_replica_loads_no_tooling_module() -> None:
    # Import every service's entry module the way a replica does, then look at what got loaded.
    code = (
        "import sys, importlib, pkgutil, services\n"
        "for m in pkgutil.iter_modules(services.__path__):\n"
        "    importlib.import_module(f'services.{m.name}.app')\n"
        "import chassis.server, chassis.testing\n"
        "print(sorted(n for n in sys.modules if n.startswith('chassis.tooling')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert out.stdout.strip() == "[]"
