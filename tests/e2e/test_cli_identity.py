"""`protomesh token|login|users|apikeys|keys` as an operator runs them, against a real mesh through its gateway."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from chassis.tooling.identity_session import read_session, session_path, write_session
from chassis.tooling.mesh_testing import RestClient, eventually, running_mesh
from chassis.tooling.supervisor import Mesh
from tests.e2e.identity_support import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    IDENTITY_TEST_ENV,
    DeviceGrant,
    approve_device,
    jwt_parts,
)

CLI = [sys.executable, "-m", "chassis.tooling.cli"]


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    """The agent service (identity comes with it), the admin password known to the tests."""
    with running_mesh(only=["agent"], replicas=1, extra_env=dict(IDENTITY_TEST_ENV)) as started:
        yield started


def protomesh(mesh: Mesh, *args: str, stdin: str | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "--state-dir", str(mesh.state_dir), *args], capture_output=True, text=True,
                          input=stdin, timeout=timeout)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def expire_cached_token(mesh: Mesh) -> None:
    session = read_session(mesh.state_dir)
    assert session is not None
    session.expires_at = 0.0
    write_session(mesh.state_dir, session)


def test_token_is_the_admins_reused_while_valid_and_refreshed_once_under_concurrency(mesh: Mesh) -> None:
    first = ok(protomesh(mesh, "token")).stdout.strip()
    header, claims = jwt_parts(first)
    assert header["alg"] in ("RS256", "ES256") and claims["iss"] == mesh.issuer and claims.get("admin") is True
    assert ok(protomesh(mesh, "token")).stdout.strip() == first  # unexpired: reused, no refresh
    assert session_path(mesh.state_dir).stat().st_mode & 0o777 == 0o600

    # Expired: four at once must refresh once between them (the refresh token rotates on use and a
    # reused one revokes the family, so without the lock all but one would fail and kill the session).
    before = read_session(mesh.state_dir)
    assert before is not None
    expire_cached_token(mesh)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: protomesh(mesh, "token"), range(4)))
    tokens = {ok(r).stdout.strip() for r in results}
    assert len(tokens) == 1 and first not in tokens
    after = read_session(mesh.state_dir)
    assert after is not None and after.refresh_token != before.refresh_token  # the rotated one was kept
    assert RestClient(f"http://{mesh.gateway}", token=lambda: tokens.pop()).get("/v1/agents").status == 200

    as_json = json.loads(ok(protomesh(mesh, "token", "--json")).stdout)
    assert as_json["token_type"] == "Bearer" and as_json["expires_at"] > time.time()


def test_users_create_list_disable_enable(mesh: Mesh) -> None:
    email = f"ops-{os.getpid()}@example.com"
    created = ok(protomesh(mesh, "users", "create", email, "--name", "Ops Person", "--password-stdin",
                           stdin="a-long-enough-password\n"))
    assert email in created.stdout and "a-long-enough-password" not in created.stdout + created.stderr
    listed = ok(protomesh(mesh, "users", "list")).stdout
    assert ADMIN_EMAIL in listed and email in listed
    assert "disabled" in ok(protomesh(mesh, "users", "disable", email)).stdout
    rows = [json.loads(line) for line in ok(protomesh(mesh, "users", "list", "--json", "--email-contains",
                                                       "ops-")).stdout.splitlines()]
    assert [r["status"] for r in rows if r["email"] == email] == ["USER_STATUS_DISABLED"]
    ok(protomesh(mesh, "users", "enable", email))
    assert "active" in ok(protomesh(mesh, "users", "list", "--email-contains", "ops-")).stdout
    assert protomesh(mesh, "users", "disable", "nobody@example.com").returncode != 0


def test_api_keys_create_list_rotate_revoke(mesh: Mesh) -> None:
    created = ok(protomesh(mesh, "apikeys", "create", "ci-pipeline", "--ttl", "1d"))
    secret = created.stdout.strip()
    assert secret and "\n" not in secret and "shown this once" in created.stderr
    anonymous = RestClient(f"http://{mesh.gateway}")
    assert anonymous.get("/v1/agents").status == 401
    assert anonymous.call("GET", "/v1/agents", headers={"x-api-key": secret}).status == 200
    assert anonymous.call("GET", "/v1/agents", headers={"authorization": f"ApiKey {secret}"}).status == 200

    listed = ok(protomesh(mesh, "apikeys", "list")).stdout
    assert "ci-pipeline" in listed and secret not in listed
    key = next(json.loads(line) for line in ok(protomesh(mesh, "apikeys", "list", "--json")).stdout.splitlines()
               if json.loads(line)["name"] == "ci-pipeline")
    assert secret not in json.dumps(key)

    rotated = ok(protomesh(mesh, "apikeys", "rotate", key["api_key_id"], "--overlap", "1h"))
    new_secret = rotated.stdout.strip()
    assert new_secret and new_secret != secret
    for usable in (secret, new_secret):  # the old one works through the overlap window
        assert anonymous.call("GET", "/v1/agents", headers={"x-api-key": usable}).status == 200
    new_id = next(json.loads(line)["api_key_id"] for line in
                  ok(protomesh(mesh, "apikeys", "list", "--json")).stdout.splitlines()
                  if json.loads(line).get("rotated_from") == key["api_key_id"])
    ok(protomesh(mesh, "apikeys", "revoke", new_id))
    eventually(lambda: anonymous.call("GET", "/v1/agents", headers={"x-api-key": new_secret}).status == 401,
               timeout=10, what="the revoked key to be refused")


def test_keys_list_and_rotate(mesh: Mesh) -> None:
    listed = ok(protomesh(mesh, "keys", "list")).stdout
    assert "current" in listed and "next" in listed
    time.sleep(2.5)  # IDENTITY_KEY_PUBLISH_LEAD is 2 s in these tests: the next key may then sign
    before = jwt_parts(ok(protomesh(mesh, "token")).stdout.strip())[0]["kid"]
    rotated = ok(protomesh(mesh, "keys", "rotate")).stdout
    assert "now signing with" in rotated and before in rotated  # the old current is listed, retiring
    expire_cached_token(mesh)
    token = ok(protomesh(mesh, "token")).stdout.strip()
    assert jwt_parts(token)[0]["kid"] != before
    assert RestClient(f"http://{mesh.gateway}", token=lambda: token).get("/v1/agents").status == 200


def _start_login(mesh: Mesh) -> tuple[subprocess.Popen[str], DeviceGrant]:
    login = subprocess.Popen([*CLI, "--state-dir", str(mesh.state_dir), "login"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert login.stdout is not None
    lines: list[str] = []
    for line in login.stdout:
        lines.append(line)
        if line.startswith("Waiting for approval"):
            break
    text = "".join(lines)
    url = text.split("open ", 1)[1].split(" in a browser", 1)[0]
    code = next(line.strip() for line in lines if line.startswith("    ") and line.strip())
    return login, DeviceGrant("", code, url, "", 0)


def test_login_runs_the_device_flow_and_replaces_the_session(mesh: Mesh) -> None:
    old = read_session(mesh.state_dir)
    login, grant = _start_login(mesh)
    try:
        approve_device(mesh, grant, ADMIN_EMAIL, ADMIN_PASSWORD)
        out, err = login.communicate(timeout=60)
    finally:
        if login.poll() is None:
            login.kill()
    assert login.returncode == 0, out + err
    assert "signed in" in out
    new = read_session(mesh.state_dir)
    assert new is not None and old is not None and new.refresh_token != old.refresh_token
    assert new.refresh_token not in out + err
    assert jwt_parts(ok(protomesh(mesh, "token")).stdout.strip())[1]["iss"] == mesh.issuer


def test_login_ctrl_c_leaves_the_session_as_it_was(mesh: Mesh) -> None:
    before = session_path(mesh.state_dir).read_text()
    login, _ = _start_login(mesh)
    try:
        login.send_signal(signal.SIGINT)
        _, err = login.communicate(timeout=20)
    finally:
        if login.poll() is None:
            login.kill()
    assert login.returncode == 130 and "cancelled" in err and "Traceback" not in err
    assert session_path(mesh.state_dir).read_text() == before


def test_help_says_how_to_use_the_token() -> None:
    shown = subprocess.run([*CLI, "token", "--help"], capture_output=True, text=True, timeout=30).stdout
    assert 'Authorization: Bearer $(.venv/bin/protomesh token)' in shown
    for command in (["login"], ["users"], ["apikeys"], ["keys"], ["apikeys", "create"]):
        assert subprocess.run([*CLI, *command, "--help"], capture_output=True, timeout=30).returncode == 0
