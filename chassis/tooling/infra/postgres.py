"""PostgreSQL 16 from the pgserver wheel, run directly as our child process (not via pg_ctl)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import re
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from chassis.tooling.credentials import read_or_create_secret
from chassis.tooling.infra.ports import LOOPBACK, free_port
from chassis.tooling.infra.process import InfraError, ManagedProcess, as_user

SUPERUSER = "postgres"
"""The superuser initdb creates; it signs in with a generated password like every other role."""
AUTH_METHOD = "scram-sha-256"
"""The only authentication pg_hba.conf allows, on the socket and on loopback TCP alike (never trust)."""
_TRUST_LINE = re.compile(r"^(\s*(?:local|host\S*)\s.*\s)trust(\s*(?:#.*)?)$", re.MULTILINE)
SYSTEM_USER = "pgserver"
"""System account PostgreSQL runs as when we are root (PostgreSQL refuses to run as root)."""
# A Unix socket path must fit in sun_path (108 bytes on Linux); beyond that we listen on TCP only.
_MAX_SOCKET_DIR_LEN = 90


def postgres_bin_dir() -> Path:
    """Folder with initdb, postgres and friends, shipped by the pgserver wheel.

    Found without importing pgserver: its package import creates runtime folders and lock
    files for its own server manager, which we do not use.
    """
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise InfraError("the pgserver package is not installed; run scripts/_setup.sh (or pip install pgserver)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


class PostgresProcess(ManagedProcess):
    """A PostgreSQL server on 127.0.0.1 with its data in data_dir; restartable on the same port and data.

    ``durable=False`` turns off fsync and full_page_writes: only tests may pass it, because a
    machine crash could then lose acknowledged commits (a killed process still loses nothing).

    Every connection needs a password (scram-sha-256); the superuser's is generated on first use
    and kept in ``password_file`` (0600; by default next to data_dir). A cluster an earlier
    version created with trust authentication is switched over on its next start.
    """

    name = "postgresql"
    # SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, checkpoint, exit.
    stop_signal = signal.SIGINT
    start_timeout = 60.0
    # The shutdown checkpoint may take a while with fsync on; SIGKILL after this is still safe
    # (the WAL replays) but makes the next start slower.
    stop_timeout = 60.0

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        durable: bool = True,
        max_connections: int = 200,
        log_path: Path | None = None,
        password_file: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.password_file = password_file or self.data_dir.parent / f"{self.data_dir.name}.superuser-password"
        self._password: str | None = None
        self._trust_to_remove = False
        self.port = port if port is not None else free_port()
        self.host = LOOPBACK
        self.durable = durable
        self.max_connections = max_connections
        # Resolved (and created if need be) on start, so constructing has no side effects.
        self._run_as: pwd.struct_passwd | None = None
        socket_dir = str(self.data_dir) if len(str(self.data_dir)) <= _MAX_SOCKET_DIR_LEN else ""
        argv = [
            str(postgres_bin_dir() / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-k",
            socket_dir,
            "-c",
            f"max_connections={max_connections}",
            "-c",
            "logging_collector=off",
        ]
        if not durable:
            # synchronous_commit stays on: a commit is in the kernel before it is acknowledged,
            # so tests that kill PostgreSQL lose nothing; only a machine crash could.
            argv += ["-c", "fsync=off", "-c", "full_page_writes=off"]
        super().__init__(
            argv,
            log_path=log_path or self.data_dir.parent / f"{self.data_dir.name}.log",
            env=self._child_env(),
        )

    @property
    def password(self) -> str:
        """The superuser's password, generated (and kept in password_file) on first use."""
        if self._password is None:
            self._password = read_or_create_secret(self.password_file)
        return self._password

    @property
    def url(self) -> str:
        """Connection URL of the default database as the superuser (with its password)."""
        return self.url_for("postgres")

    def url_for(self, database: str, user: str = SUPERUSER, password: str | None = None) -> str:
        """Connection URL of a database on this server, as the superuser unless another role is given."""
        secret = self.password if password is None and user == SUPERUSER else password
        credentials = f"{user}:{secret}" if secret else user
        return f"postgresql://{credentials}@{self.host}:{self.port}/{database}"

    def before_start(self) -> None:
        """Initialise the data directory on first use and check the port and lock file."""
        self.check_port(self.name, self.host, self.port)
        if os.geteuid() == 0 and self._run_as is None:
            self._run_as = self._system_user()
            self.user, self.group = self._run_as.pw_uid, self._run_as.pw_gid
            self.env = self._child_env()
        self._check_not_already_running()
        self.initdb()

    def initdb(self) -> None:
        """Create the cluster in data_dir unless it already holds one (PG_VERSION exists)."""
        if (self.data_dir / "PG_VERSION").exists():
            self._fix_ownership()
            self._trust_to_remove = bool(_TRUST_LINE.search(self._hba_path.read_text()))
            return
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise InfraError(
                f"{self.data_dir} is not empty but holds no PostgreSQL cluster (no PG_VERSION); "
                f"empty it or choose another data directory"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._fix_ownership()
        argv = [
            str(postgres_bin_dir() / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            f"--auth={AUTH_METHOD}",
            "--encoding=UTF8",
            "--no-locale",
        ]
        if not self.durable:
            argv.append("--no-sync")
        with tempfile.TemporaryDirectory(prefix="protomesh-initdb-") as scratch:
            # initdb reads the password from a file; as root it runs as the system user, who must read it.
            pwfile = Path(scratch) / "pwfile"
            pwfile.write_text(self.password + "\n")
            pwfile.chmod(0o600)
            if self._run_as is not None:
                os.chown(scratch, self._run_as.pw_uid, self._run_as.pw_gid)
                os.chown(pwfile, self._run_as.pw_uid, self._run_as.pw_gid)
            command, user, group = as_user([*argv, f"--pwfile={pwfile}"], self.user, self.group)
            result = subprocess.run(  # noqa: S603 an argv list, no shell: pgserver's initdb
                command,
                capture_output=True,
                text=True,
                env=self.env,
                check=False,
                user=user,
                group=group,
            )
        if result.returncode != 0:
            raise InfraError(
                f"initdb failed for {self.data_dir} (exit {result.returncode}); remove the folder "
                f"and try again:\n{result.stdout}\n{result.stderr}"
            )

    def wait_ready(self, timeout: float) -> None:
        """Return once a client can connect and run a query (and an old trust setup is gone)."""
        self.poll_until(self._accepts_connections, timeout, f"accepting connections on port {self.port}")
        if self._trust_to_remove:
            self._remove_trust()

    def _remove_trust(self) -> None:
        """Give the superuser its password, then make pg_hba.conf ask for it (a cluster from trust days).

        Trust still applies while we connect, so the password is set before it becomes required.
        """
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(SUPERUSER),
                                                                     sql.Literal(self.password)))
            hba = self._hba_path
            stat_result = hba.stat()
            hba.write_text(_TRUST_LINE.sub(rf"\g<1>{AUTH_METHOD}\g<2>", hba.read_text()))
            os.chown(hba, stat_result.st_uid, stat_result.st_gid)
            conn.execute("SELECT pg_reload_conf()")
        self._trust_to_remove = False

    @property
    def _hba_path(self) -> Path:
        return self.data_dir / "pg_hba.conf"

    def create_database(self, name: str) -> str:
        """Create database `name` if it does not exist; return its URL."""
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    # -- internals ---------------------------------------------------------------------------

    def _accepts_connections(self) -> bool:
        try:
            with psycopg.connect(self.url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def _check_not_already_running(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return
        with contextlib.suppress(ValueError, OSError, IndexError):
            pid = int(pid_file.read_text().splitlines()[0])
            # A stale postmaster.pid (after a crash) is fine: PostgreSQL removes it. Only a live
            # postgres process holding the directory is a problem we can explain better than it does.
            if Path(f"/proc/{pid}/comm").read_text().strip() == "postgres":
                raise InfraError(
                    f"PostgreSQL (pid {pid}) is already running on {self.data_dir}, probably left over "
                    f"from an earlier run; stop it with `kill -INT {pid}` and start again"
                )

    @staticmethod
    def _system_user() -> pwd.struct_passwd:
        """The account to run as when root, created (as pgserver's own tooling does) if missing."""
        try:
            return pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            pass
        result = subprocess.run(  # noqa: S603 an argv list, no shell, fixed arguments
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],  # noqa: S607 the system's useradd from root's PATH (only as root)
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise InfraError(
                f"PostgreSQL cannot run as root and creating the system user {SYSTEM_USER!r} failed "
                f"({result.stderr.strip()}); create it (useradd --system {SYSTEM_USER}) "
                f"or run as a normal user"
            )
        return pwd.getpwnam(SYSTEM_USER)

    def _child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        if self._run_as is not None:
            env["HOME"] = str(self.data_dir)
            env["USER"] = env["LOGNAME"] = self._run_as.pw_name
        return env

    def _fix_ownership(self) -> None:
        """As root: hand data_dir to the system user and make sure it can reach it and the binaries."""
        if self._run_as is None:
            return
        uid, gid = self._run_as.pw_uid, self._run_as.pw_gid
        if self.data_dir.stat().st_uid != uid:
            for root, dirs, files in os.walk(self.data_dir):
                os.chown(root, uid, gid)
                for name in dirs + files:
                    os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)
        self.data_dir.chmod(0o700)
        _let_group_traverse(self.data_dir.parent, gid)
        for path in (self.data_dir.parent, postgres_bin_dir().parent / "lib", postgres_bin_dir()):
            _ensure_traversable(path, gid)


def _let_group_traverse(folder: Path, gid: int) -> None:
    """A private folder (no group or other bits, e.g. the mesh's 0700 state folder) stays closed to
    others: only the system user's group gets search (x) permission, so it reaches its data folder."""
    mode = folder.stat().st_mode
    if mode & 0o077 == 0 or (folder.stat().st_gid == gid and mode & 0o007 == 0):
        os.chown(folder, -1, gid)
        folder.chmod(stat.S_IMODE(mode) | stat.S_IXGRP)


def _ensure_traversable(path: Path, gid: int) -> None:
    """Give others search (x) permission on path and its parents where it is missing.

    pytest's and many home folders are 0700; the PostgreSQL system user must walk through them.
    A folder whose group already lets it through (see _let_group_traverse) is left as it is.
    """
    for folder in (path, *path.parents):
        info = folder.stat()
        if info.st_mode & stat.S_IXOTH:
            continue
        if info.st_mode & stat.S_IXGRP and info.st_gid == gid:
            continue
        folder.chmod(info.st_mode | stat.S_IXOTH)
