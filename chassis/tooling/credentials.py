"""Secrets of the local mesh: generated on first use, kept one per file in the state folder (0600 in 0700).

Every service gets its own PostgreSQL role and NATS user, so each needs its own password; the
supervisor (the operator) has its own too. They are generated once and reused, because the
PostgreSQL cluster and the NATS config outlive a `protomesh down`: a new password every start
would lock the services out of the roles created on the first one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
CREDENTIALS_DIR = "credentials"
SUPERVISOR_USER = "protomesh"
"""The NATS user of the supervisor and the CLI (the operator): the only one with every permission."""


def private_dir(path: Path, mode: int = PRIVATE_DIR_MODE) -> Path:
    """Create path (and missing parents) and make path itself accessible to its owner only."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, atomically; it is never visible with wider permissions."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # os.open with the mode, not write_text + chmod: the latter leaves a window where the umask's
    # wider mode applies.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(tmp, PRIVATE_FILE_MODE)  # O_CREAT's mode does not apply when the file already existed
    tmp.replace(path)


def read_or_create_secret(path: Path) -> str:
    """The secret in path; a new random one (URL- and config-safe characters) if the file is missing.

    Two processes racing here agree on one value: O_EXCL lets only one create the file.
    """
    with contextlib.suppress(FileNotFoundError):
        value = path.read_text().strip()
        if value:
            return value
    if not path.parent.exists():  # an existing folder keeps its mode (it may be PostgreSQL's parent)
        private_dir(path.parent)
    value = secrets.token_urlsafe(24)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value


class MeshCredentials:
    """The secrets of one local mesh, in <state>/credentials/: one file per PostgreSQL role and NATS user."""

    def __init__(self, state_dir: Path) -> None:
        self.folder = state_dir / CREDENTIALS_DIR

    def postgres_superuser(self) -> Path:
        """File of the embedded PostgreSQL's superuser password (the supervisor's, never a service's)."""
        return self.folder / "postgres-superuser"

    def postgres_role(self, service: str) -> str:
        """Password of the service's own PostgreSQL role."""
        return read_or_create_secret(self.folder / f"postgres-{service}")

    def nats_user(self, user: str) -> str:
        """Password of a NATS user (a service's, or SUPERVISOR_USER)."""
        return read_or_create_secret(self.folder / f"nats-{user}")
