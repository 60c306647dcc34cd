"""The CLI's OAuth session with the local mesh's identity provider: <state>/identity/session.json (0600).

The session holds the issuer, the public client id (`protomesh-cli`), the current refresh token and
the last access token with its expiry. `access_token(state_dir)` reuses an access token that is
still valid, else refreshes at `<issuer>/oauth2/token`. Refresh tokens rotate on every use and a
reused one revokes its whole family (docs/identity.md), so a refresh and the write of the rotated
token are one step under an exclusive file lock: two `protomesh token` at once (a script in a loop,
tests on several threads) must not both spend the same refresh token.

Standard library only (urllib): the CLI and the tests call this, never a replica.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chassis.tooling.credentials import private_dir, write_private

IDENTITY_DIR = "identity"
SESSION_FILE = "session.json"
BOOTSTRAP_FILE = "bootstrap.json"
LOCK_FILE = "session.lock"
CLI_CLIENT_ID = "protomesh-cli"
MIN_VALIDITY_SECONDS = 30.0
"""An access token with less left than this is refreshed: a caller needs time to use it (and clocks drift)."""
HTTP_TIMEOUT_SECONDS = 10.0


class SessionError(Exception):
    """No usable session: the message says what to do (log in, start the mesh)."""


class OAuthError(SessionError):
    """The identity provider refused a request with an RFC 6749 error (`invalid_grant`, ...)."""

    def __init__(self, error: str, description: str, status: int, retry_after: float | None = None) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status
        self.retry_after = retry_after


@dataclass
class Session:
    """What the CLI keeps between calls. Secrets: refresh_token and access_token (file is 0600)."""

    issuer: str
    client_id: str
    refresh_token: str
    access_token: str = ""
    expires_at: float = 0.0
    """Unix time the access token expires."""
    subject: str = ""
    """Who the session is for (an email when known), shown by the CLI; not used for anything else."""

    def valid_access_token(self, now: float, min_validity: float = MIN_VALIDITY_SECONDS) -> str | None:
        """The cached access token when it has at least min_validity seconds left."""
        if self.access_token and self.expires_at - now >= min_validity:
            return self.access_token
        return None


def identity_dir(state_dir: Path) -> Path:
    """<state>/identity: bootstrap and session files, 0700."""
    return state_dir / IDENTITY_DIR


def session_path(state_dir: Path) -> Path:
    """<state>/identity/session.json."""
    return identity_dir(state_dir) / SESSION_FILE


def bootstrap_path(state_dir: Path) -> Path:
    """<state>/identity/bootstrap.json, which the identity replica writes on the mesh's first start."""
    return identity_dir(state_dir) / BOOTSTRAP_FILE


def read_session(state_dir: Path) -> Session | None:
    """The stored session, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads(session_path(state_dir).read_text())
        return Session(**{k: data[k] for k in Session.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def write_session(state_dir: Path, session: Session) -> None:
    """Replace the session atomically, 0600 in a 0700 folder (readers never see half a file)."""
    private_dir(identity_dir(state_dir))
    write_private(session_path(state_dir), json.dumps(asdict(session), indent=2) + "\n")


@contextlib.contextmanager
def session_lock(state_dir: Path) -> Iterator[None]:
    """An exclusive lock over reading, refreshing and writing the session (a separate file: the session
    itself is replaced by rename, which a lock on it would not survive)."""
    private_dir(identity_dir(state_dir))
    path = identity_dir(state_dir) / LOCK_FILE
    with open(path, "a") as handle:
        path.chmod(0o600)
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def post_form(url: str, fields: dict[str, str], timeout: float = HTTP_TIMEOUT_SECONDS) -> dict[str, Any]:
    """POST an application/x-www-form-urlencoded body; the JSON answer, or OAuthError with the RFC error."""
    request = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), method="POST",  # noqa: S310 an endpoint of the issuer the operator configured (CLI side), never a remote caller's URL
                                     headers={"content-type": "application/x-www-form-urlencoded",
                                              "accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310 (same reason)
            return dict(json.loads(reply.read()))
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            data = json.loads(body)
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        retry = error.headers.get("Retry-After") if error.headers else None
        raise OAuthError(str(data.get("error") or f"http_{error.code}"),
                         str(data.get("error_description") or ""), error.code,
                         float(retry) if retry and retry.isdigit() else None) from None
    except (OSError, ValueError) as error:
        raise SessionError(f"cannot reach the identity provider at {url}: {error} "
                           "(is the mesh running? `protomesh status`)") from None


def token_endpoint(issuer: str) -> str:
    """The token endpoint of the mesh's provider (docs/identity.md fixes the paths under the issuer)."""
    return issuer.rstrip("/") + "/oauth2/token"


def session_from_tokens(issuer: str, client_id: str, answer: dict[str, Any], subject: str = "",
                        now: float | None = None) -> Session:
    """A session from a token endpoint answer (refresh or device grant)."""
    now = time.time() if now is None else now
    refresh = answer.get("refresh_token")
    if not refresh:
        raise SessionError("the identity provider answered without a refresh token; the session cannot be kept")
    return Session(issuer=issuer, client_id=client_id, refresh_token=str(refresh),
                   access_token=str(answer.get("access_token", "")),
                   expires_at=now + float(answer.get("expires_in", 0)), subject=subject)


def refresh(session: Session) -> Session:
    """Spend the refresh token for a new access token and the rotated refresh token (no file I/O)."""
    started = time.time()
    answer = post_form(token_endpoint(session.issuer), {"grant_type": "refresh_token",
                                                        "refresh_token": session.refresh_token,
                                                        "client_id": session.client_id})
    return session_from_tokens(session.issuer, session.client_id, {"refresh_token": session.refresh_token, **answer},
                               session.subject, now=started)


def access_token(state_dir: Path, *, min_validity: float = MIN_VALIDITY_SECONDS) -> str:
    """An access token of the session in state_dir: the cached one while valid, else a refreshed one.

    The rotated refresh token is written back before this returns; a refusal (a revoked or reused
    refresh token, a disabled user) raises SessionError saying to run `protomesh login`.
    """
    session = read_session(state_dir)
    if session is None:
        raise SessionError(f"no session in {session_path(state_dir)}: start the mesh (`scripts/up`, which "
                           "creates the local admin's session on its first start) or run `protomesh login`")
    cached = session.valid_access_token(time.time(), min_validity)
    if cached:
        return cached
    with session_lock(state_dir):
        # Another process may have refreshed while this one waited for the lock: read again.
        session = read_session(state_dir) or session
        cached = session.valid_access_token(time.time(), min_validity)
        if cached:
            return cached
        try:
            session = refresh(session)
        except OAuthError as error:
            if error.error in ("invalid_grant", "invalid_client", "unauthorized_client"):
                raise SessionError(f"the session was refused ({error}); run `protomesh login`") from None
            raise
        write_session(state_dir, session)
    return session.access_token


def adopt_bootstrap(state_dir: Path, issuer: str) -> Session | None:
    """Move the admin's refresh token the identity replica's first start left in bootstrap.json into the
    CLI session (replacing any older session), and drop it from that file.

    Returns the new session, or None when there was no refresh token to adopt. The generated admin
    password, if any, stays in the file for `take_admin_password`. Under the session lock, so a
    `protomesh token` running meanwhile never spends the old refresh token after it was replaced.
    """
    path = bootstrap_path(state_dir)
    with session_lock(state_dir):
        data = _read_bootstrap(path)
        if not data.get("refresh_token"):
            return None
        session = Session(issuer=str(data.get("issuer") or issuer),
                          client_id=str(data.get("client_id") or CLI_CLIENT_ID),
                          refresh_token=str(data["refresh_token"]), subject=str(data.get("admin_email", "")))
        write_session(state_dir, session)
        write_private(path, json.dumps({k: v for k, v in data.items() if k != "refresh_token"}, indent=2) + "\n")
    return session


def take_admin_password(state_dir: Path) -> tuple[str, str] | None:
    """(admin email, generated password) from bootstrap.json, removing the password from the file:
    whoever calls this shows it once (`protomesh up` on the terminal); afterwards it exists nowhere
    but in the identity service's argon2id hash. None when there is no password (it was given in
    PROTOMESH_ADMIN_PASSWORD, or was already taken)."""
    path = bootstrap_path(state_dir)
    with session_lock(state_dir):
        data = _read_bootstrap(path)
        password = data.pop("admin_password", None)
        if not password:
            return None
        write_private(path, json.dumps(data, indent=2) + "\n")
    return str(data.get("admin_email", "")), str(password)


def _read_bootstrap(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def follow_issuer(state_dir: Path, issuer: str) -> None:
    """Point an existing session at this start's issuer (a mesh restarted on another port has another one).

    Tokens carry `iss`, so a cached access token of the old issuer is dropped; the refresh token
    stays valid (it is a row in the identity service's database, not bound to the URL).
    """
    with session_lock(state_dir):
        session = read_session(state_dir)
        if session is None or session.issuer == issuer:
            return
        session.issuer, session.access_token, session.expires_at = issuer, "", 0.0
        write_session(state_dir, session)
