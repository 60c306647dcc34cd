"""The README's examples, run as written against a real mesh: every one works with authentication on.

The blocks are read from README.md itself (so an edit there is what is tested); only the gateway's
address is replaced by the test mesh's, and `.venv/bin/protomesh` finds that mesh's session through
PROTOMESH_STATE_DIR, as it finds `.protomesh/` after `scripts/up`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from chassis.paths import REPO_ROOT
from chassis.tooling.mesh_testing import running_mesh
from chassis.tooling.supervisor import Mesh

README = REPO_ROOT / "README.md"
ADA_PASSWORD = "ada-has-a-long-password"  # pragma: allowlist secret - fake credential, test input


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    # A 2 s publish lead lets `protomesh keys rotate` promote the next key soon after the start.
    with running_mesh(only=["agent"], replicas=1, extra_env={"IDENTITY_KEY_PUBLISH_LEAD": "2s"}) as started:
        yield started


def section_blocks(title: str, language: str) -> list[str]:
    """The fenced `language` blocks of the README section whose heading starts with `title`."""
    text = README.read_text()
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end != -1 else None]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def for_mesh(script: str, mesh: Mesh) -> str:
    return script.replace("localhost:8080", mesh.gateway).replace("127.0.0.1:8080", mesh.gateway)


def run_bash(script: str, mesh: Mesh, stdin: str = "") -> str:
    env = {**os.environ, "PROTOMESH_STATE_DIR": str(mesh.state_dir)}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", for_mesh(script, mesh)], cwd=REPO_ROOT, env=env,
                            input=stdin, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"exit {result.returncode}\n{script}\n--- stdout\n{result.stdout}\n" \
                                   f"--- stderr\n{result.stderr}"
    return result.stdout + result.stderr


def test_calling_it_with_curl_and_grpcurl(mesh: Mesh) -> None:
    [block] = section_blocks("Calling it", "bash")
    output = run_bash(block, mesh)
    assert '"result":98' in output.replace(" ", ""), output
    assert "HTTP/1.1 400" in output and "HTTP/1.1 401" in output, output
    assert "protomesh.agent.v1.AgentService" in output and "rpc ExecuteAgent" in output
    assert "Unauthenticated" not in output


def test_calling_it_from_python(mesh: Mesh) -> None:
    [block] = section_blocks("Calling it", "python")
    env = {**os.environ, "PROTOMESH_STATE_DIR": str(mesh.state_dir)}
    result = subprocess.run([sys.executable, "-c", for_mesh(block, mesh)], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "78498"


def test_who_is_calling_tokens_users_and_api_keys(mesh: Mesh) -> None:
    [block] = section_blocks("Who is calling", "bash")
    lines = []
    for line in block.splitlines():
        if "protomesh login" in line:
            continue  # waits for a person to approve in a browser (tests/e2e/test_cli_identity.py drives it)
        lines.append(line.replace("KEY_ID", "$KEY_ID"))
        if line.startswith("KEY=$("):
            lines.append("KEY_ID=$(.venv/bin/protomesh apikeys list --json | python3 -c "
                         "'import sys,json;print([k for k in map(json.loads, sys.stdin)][-1][\"api_key_id\"])')")
    time.sleep(2.5)  # the next signing key has been published for the lead, so `keys rotate` may promote it
    output = run_bash("\n".join(lines), mesh, stdin=ADA_PASSWORD + "\n")
    assert "created ada@example.com" in output and "disabled ada@example.com" in output, output
    assert "ci-pipeline" in output and "now signing with" in output
    assert ADA_PASSWORD not in output
    # The API key call answered the agent list (curl prints it without a newline), not a 401 body.
    assert '{"agents":[' in output and '"code":16' not in output.replace(" ", ""), output


def test_field_rules_example(mesh: Mesh) -> None:
    [block] = [b for b in section_blocks("Development", "bash") if "bad" in b and "curl" in b]
    output = run_bash(block, mesh)
    assert '"name"' in output and '"type"' in output, output


def test_audit_examples(mesh: Mesh) -> None:
    [block] = section_blocks("What each identity may do", "bash")
    follow = [line for line in block.splitlines() if " -f" in line]
    assert follow, "the section shows how to follow the trail"
    # A write and a denial first, so the trail has records of both; -f follows forever, so it is left out.
    run_bash('curl -s -H "Authorization: Bearer $(.venv/bin/protomesh token)" -X POST localhost:8080/v1/agents '
             """-d '{"name": "audited", "type": "calculator"}'; curl -s localhost:8080/v1/agents""", mesh)
    time.sleep(3)  # the outbox relay and the identity consumer carry the records over
    output = run_bash("\n".join(line for line in block.splitlines() if line not in follow), mesh)
    assert "RegisterAgent" in output and "DENIED" in output.upper(), output
    assert '"records":[' in output.replace(" ", "") or '"auditRecords":[' in output.replace(" ", ""), output
