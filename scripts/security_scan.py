"""The security scanners of scripts/test (docs/authorization.md, "Security scanning"). All offline.

1. ruff's S rules (flake8-bandit: bandit's checks under the same numbers, S608 = B608) over chassis/ and
   services/, with the project's configuration (pyproject.toml).
2. Every suppression says why: a `# noqa: S...` must carry a reason after its codes, a detect-secrets
   `pragma: allowlist [nextline] secret` too. Refused: a `# noqa` without codes (it silences every rule),
   and a `# nosec` (ruff does not read it: it would look reviewed and suppress nothing).
3. detect-secrets over every file git knows or would add (tracked, and untracked but not ignored), with the
   plugins, filters and exclusions of the committed .secrets.baseline; any secret not in the baseline fails.
   The baseline is only read, never rewritten. Verification (a network call to the secret's issuer) is not
   among its filters, so nothing leaves the machine.

`python -m scripts.security_scan [--root DIR]` (DIR: a tree with the same layout; the tests use one).
Exit 0 when all three pass, 1 otherwise, after printing every finding.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

BASELINE = ".secrets.baseline"
CODE_DIRS = ("chassis", "services")
VERIFYING_FILTER = "detect_secrets.filters.common.is_ignored_due_to_verification_policies"

# A noqa comment: "noqa:", the codes (S608, E501), then whatever follows them (the reason).
_NOQA = re.compile(r"#\s*noqa:\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)(?P<rest>.*)$")
_NOSEC = re.compile(r"#\s*nosec\b")
_BLANKET = re.compile(r"#\s*noqa(?!:)\b", re.IGNORECASE)  # a noqa comment without codes
_PRAGMA = re.compile(r"pragma:\s?(?:allow|white)list[ -](?:nextline[ -])?secret(?P<rest>.*)$")
_REASON = re.compile(r"[A-Za-z]{3,}.*[A-Za-z]{3,}")  # at least two words of text


def _git_files(root: Path) -> list[str]:
    """Tracked files and untracked ones git would add (a new file fails before its first commit)."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, capture_output=True, check=True,
    ).stdout.decode()
    # --cached lists files deleted in the working tree too; symlinks are scanned where they point.
    return sorted({f for f in out.split("\0") if f and (root / f).is_file() and not (root / f).is_symlink()})


def ruff_security(root: Path) -> list[str]:
    """Findings of ruff's S rules in chassis/ and services/, one line each."""
    dirs = [d for d in CODE_DIRS if (root / d).is_dir()]
    if not dirs:
        return []
    # The ruff beside this interpreter (the venv's), so a bare `.venv/bin/python -m ...` finds it too.
    beside = Path(sys.executable).parent / "ruff"
    ruff = str(beside) if beside.is_file() else "ruff"
    result = subprocess.run(
        [ruff, "check", "--select", "S", "--output-format", "concise", "--no-fix", *dirs],
        cwd=root, capture_output=True, text=True,
    )
    if result.returncode == 0:
        return []
    lines = [line for line in result.stdout.splitlines() if re.match(r"^\S+:\d+:\d+: S\d+", line)]
    return lines or [result.stdout.strip() + result.stderr.strip()]


def _lines(root: Path, files: Iterable[str]) -> Iterator[tuple[str, int, str]]:
    for name in files:
        try:
            text = (root / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files carry no comments
        for number, line in enumerate(text.splitlines(), 1):
            yield name, number, line


def unjustified(root: Path, files: list[str]) -> list[str]:
    """Suppressions without a reason: S-rule noqa and nosec in the code, secret pragmas anywhere."""
    problems = []
    code = [f for f in files if f.endswith(".py") and f.split("/", 1)[0] in CODE_DIRS]
    for name, number, line in _lines(root, code):
        if _NOSEC.search(line):
            problems.append(f"{name}:{number}: `# nosec` is not read by the scanner (ruff): "
                            "write `# noqa: SXXX <why>` instead")
        if _BLANKET.search(line):
            problems.append(f"{name}:{number}: a bare `# noqa` silences every rule, the S rules too: "
                            "name the codes and say why")
        noqa = _NOQA.search(line)
        if noqa and any(c.strip().startswith("S") for c in noqa["codes"].split(",")) \
                and not _REASON.search(noqa["rest"]):
            problems.append(f"{name}:{number}: `# noqa: {noqa['codes']}` without a reason: "
                            "say on the line why it is safe")
    for name, number, line in _lines(root, files):
        pragma = _PRAGMA.search(line)
        if pragma and not _REASON.search(pragma["rest"]):
            problems.append(f"{name}:{number}: `pragma: allowlist secret` without a reason: "
                            "say why the value is not a real secret (e.g. a development-only key)")
    return problems


def secrets(root: Path, files: list[str]) -> list[str]:
    """Secrets detect-secrets finds that the committed baseline does not list."""
    from detect_secrets.core import baseline
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import get_settings

    path = root / BASELINE
    if not path.is_file():
        return [f"{BASELINE} is missing: the secret scan takes its plugins and filters from it"]
    known = baseline.load(baseline.load_from_file(str(path)), filename=BASELINE)
    if VERIFYING_FILTER in get_settings().filters:
        return [f"{BASELINE} enables verification (a network call per secret): regenerate it with -n"]
    found = SecretsCollection(root=str(root))
    # Two processes: the machine is shared, and the scan is a few seconds per hundred files.
    found.scan_files(*files, num_processors=min(2, os.cpu_count() or 1))
    new = found - known
    return [f"{name}:{secret.line_number}: {secret.type}" for name, secret in sorted(
        new, key=lambda item: (item[0], item[1].line_number or 0))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    root = parser.parse_args(argv).root.resolve()
    files = _git_files(root)
    failed = False
    for title, findings, advice in (
        ("ruff S rules (chassis/, services/)", ruff_security(root),
         "fix it, or add `# noqa: SXXX <why it is safe>` on the reported line"),
        ("suppressions without a reason", unjustified(root, files), ""),
        ("secrets (detect-secrets, offline)", secrets(root, files),
         "remove it; a value that is not a real secret (fake test data, a development-only key) gets "
         "`# pragma: allowlist secret <why>` on its line or `# pragma: allowlist nextline secret <why>` "
         "on the line before"),
    ):
        if findings:
            failed = True
            print(f"security scan: {title}: {len(findings)} finding(s)", file=sys.stderr)
            for finding in findings:
                print(f"  {finding}", file=sys.stderr)
            if advice:
                print(f"  -> {advice}", file=sys.stderr)
        else:
            print(f"security scan: {title}: none", file=sys.stderr)
    print(f"security scan: {len(files)} files, {'FAILED' if failed else 'passed'}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
