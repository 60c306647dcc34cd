"""The security scanners of scripts/test can fail: each finding alone fails the scan (scripts/security_scan.py).

Every case builds a small tree with the project's layout, its pyproject.toml (the ruff S configuration)
and its .secrets.baseline (the detect-secrets plugins and filters), adds one thing to a clean tree and
runs the real scanner on it, as scripts/test does: a hardcoded password, an `eval`, SQL built from a
caller's text, a suppression without a reason or without codes, an AWS-looking key, a private key, an
unquoted base64 key in a .env. The secrets are made at run time (random, real-looking), so this file holds none.
The files stay untracked in the tree's git repository: a secret fails the scan before its first commit.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import string
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chassis.paths import REPO_ROOT

CLEAN_CODE = '"""A harmless module."""\n\n\ndef double(value: int) -> int:\n    return value * 2\n'


def _aws_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(string.ascii_uppercase + "234567") for _ in range(16))


def _private_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A clean tree: the project's scanner configuration, one harmless module per scanned folder, a git repo."""
    root = tmp_path / "tree"
    for name in ("pyproject.toml", ".secrets.baseline"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, root / name)
    for folder in ("chassis", "services/demo"):
        (root / folder).mkdir(parents=True)
        (root / folder / "module.py").write_text(CLEAN_CODE)
    (root / "README.md").write_text("# demo\n\nNothing secret here.\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def scan(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scripts.security_scan", "--root", str(root)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=240)


def test_a_clean_tree_passes(tree: Path) -> None:
    result = scan(tree)
    assert result.returncode == 0, result.stderr
    assert "passed" in result.stderr


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def hardcoded_password(root: Path) -> None:
    _write(root / "services/demo/settings.py", f'ADMIN_PASSWORD = "{secrets.token_urlsafe(12)}"\n')


def eval_call(root: Path) -> None:
    _write(root / "chassis/calc.py", "def run(expression: str) -> object:\n    return eval(expression)\n")


def sql_from_text(root: Path) -> None:
    _write(root / "services/demo/store.py",
           "def find(cur: object, name: str) -> None:\n"
           "    cur.execute(f\"SELECT * FROM agents WHERE name = '{name}'\")  # type: ignore[attr-defined]\n")


def bare_noqa(root: Path) -> None:
    _write(root / "chassis/calc.py", "def run(expression: str) -> object:\n    return eval(expression)  # noqa: S307\n")


def blanket_noqa(root: Path) -> None:
    _write(root / "chassis/calc.py", "def run(expression: str) -> object:\n    return eval(expression)  # noqa\n")


def nosec(root: Path) -> None:
    _write(root / "chassis/calc.py", "import random\n\nJITTER = random.random()  # nosec B311\n")


def aws_key_in_yaml(root: Path) -> None:
    _write(root / "deploy/settings.yaml", f"aws_access_key_id: {_aws_key_id()}\nregion: eu-west-1\n")


def private_key(root: Path) -> None:
    _write(root / "deploy/tls/gateway.pem", _private_key_pem())


def key_in_dotenv(root: Path) -> None:
    _write(root / ".env", f"LOG_LEVEL=INFO\nORDERS_ENCRYPTION_KEY={base64.b64encode(os.urandom(32)).decode()}\n")


def pragma_without_reason(root: Path) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    pragma = "# pragma: allowlist" + " secret"  # split, so this file's own line has no bare pragma
    _write(root / "services/demo/fixture.py", f'SIGNING_KEY = "{key}"  # noqa: S105 a fake key for a test  {pragma}\n')


@pytest.mark.parametrize(("add", "expected"), [
    pytest.param(hardcoded_password, ["S105", "Secret Keyword"], id="hardcoded-password"),
    pytest.param(eval_call, ["S307"], id="eval"),
    pytest.param(sql_from_text, ["S608"], id="sql-from-text"),
    pytest.param(bare_noqa, ["without a reason"], id="noqa-without-reason"),
    pytest.param(blanket_noqa, ["bare `# noqa`"], id="noqa-without-codes"),
    pytest.param(nosec, ["nosec", "S311"], id="nosec-is-not-read"),
    pytest.param(aws_key_in_yaml, ["AWS Access Key"], id="aws-key"),
    pytest.param(private_key, ["Private Key"], id="private-key"),
    pytest.param(key_in_dotenv, [".env:2"], id="unquoted-key-in-dotenv"),
    pytest.param(pragma_without_reason, ["allowlist secret` without a reason"], id="pragma-without-reason"),
])
def test_each_finding_fails_the_scan(tree: Path, add: Callable[[Path], None], expected: list[str]) -> None:
    add(tree)
    result = scan(tree)
    assert result.returncode == 1, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr
    assert "FAILED" in result.stderr


def test_a_justified_suppression_passes(tree: Path) -> None:
    """The way out the docs describe: the reason on the line (ruff), a reasoned pragma (detect-secrets)."""
    key = base64.b64encode(os.urandom(32)).decode()
    _write(tree / "chassis/calc.py",
           "def run() -> object:\n    return eval('1 + 1')  # noqa: S307 a constant expression, no input\n")
    _write(tree / "services/demo/fixture.py",
           f'SIGNING_KEY = "{key}"  # noqa: S105 a fake key for a test  # pragma: allowlist secret - a test fixture\n')
    _write(tree / ".env", f"# pragma: allowlist nextline secret - development only, public\nDEV_KEY={key}\n")
    result = scan(tree)
    assert result.returncode == 0, result.stderr
