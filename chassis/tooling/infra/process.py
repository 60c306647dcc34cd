"""ManagedProcess: one child process we own by PID, with its output in a log file and a readiness check."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from chassis.tooling.infra.ports import port_in_use

logger = logging.getLogger(__name__)


class InfraError(RuntimeError):
    """An infrastructure process could not be started or used; the message says what to do about it."""


class PortInUseError(InfraError):
    """The port a process must listen on is already taken by another process."""

    def __init__(self, what: str, host: str, port: int, hint: str = "") -> None:
        self.what = what
        self.host = host
        self.port = port
        advice = hint or "stop that process, or choose another port (leave the port unset to pick a free one)"
        super().__init__(f"{what}: port {port} on {host} is taken by another process; {advice}")


def ensure_port_free(what: str, host: str, port: int, hint: str = "") -> None:
    """Raise PortInUseError (naming `what` and how to fix it) if host:port is already taken."""
    if port_in_use(host, port):
        raise PortInUseError(what, host, port, hint)


def as_user(
    argv: Sequence[str], user: str | int | None, group: str | int | None,
) -> tuple[list[str], str | int | None, str | int | None]:
    """(argv, user, group) for Popen that run `argv` as user/group without forking this process' state.

    Popen's own `user=`/`group=` make CPython fork() instead of vfork(), and fork() runs gRPC's
    pthread_atfork handlers in the child: a test process or supervisor holding channels then saw initdb
    die of SIGBUS (and PostgreSQL of SIGSEGV) before exec. `setpriv` switches identity after a vfork
    instead; Popen's own switch is the fallback where util-linux is missing.
    """
    argv = [str(a) for a in argv]
    if user is None and group is None:
        return argv, None, None
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return argv, user, group
    switch = [setpriv]
    if group is not None:
        switch.append(f"--regid={group}")
    if user is not None:
        switch += [f"--reuid={user}", "--clear-groups"]
    return [*switch, *argv], None, None


class ManagedProcess:
    """A child process started with Popen in its own session, stopped by PID.

    The child runs in a new session (``start_new_session=True``) so that Ctrl-C in a terminal
    reaches only our supervisor, which then stops children in order instead of all of them
    dying at once. Its stdout and stderr are appended to ``log_path``. Subclasses override
    ``wait_ready`` (how to tell the process is serving) and may set ``stop_signal``.
    Everything here is synchronous so pytest fixtures and ``asyncio.to_thread`` can both use it.
    """

    name: str = "process"
    """Human name used in log lines and error messages."""
    stop_signal: signal.Signals = signal.SIGTERM
    """Signal that asks the process to shut down cleanly."""
    start_timeout: float = 30.0
    """Default seconds `start()` waits for `wait_ready`."""
    stop_timeout: float = 10.0
    """Default seconds `stop()` waits after `stop_signal` before it sends SIGKILL."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | int | None = None,
        group: str | int | None = None,
    ) -> None:
        self.argv: list[str] = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.group = group
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float | None = None) -> None:
        """Start the process and return once `wait_ready` says it serves; a no-op if it is running.

        On failure the child is killed and InfraError is raised with the end of its log.
        """
        if self.is_running():
            return
        self.launch()
        try:
            self.ready(timeout)
        except InfraError:
            # A child killed by a signal before it was ready (CI once saw the embedded PostgreSQL die of
            # SIGSEGV on an immediate restart of the same data folder) gets one more start; an ordinary
            # failure (bad config, taken port: a positive exit code) is reported at once.
            # SIGKILL is how ready() itself ends a child that timed out: not a crash, no second try.
            if self.returncode is None or self.returncode >= 0 or self.returncode == -signal.SIGKILL:
                raise
            logger.warning("%s died of signal %s before it was ready; starting it once more",
                           self.name, -self.returncode)
            self.launch()
            self.ready(timeout)

    def ready(self, timeout: float | None = None) -> None:
        """Wait until a launched process serves; on failure kill it and raise InfraError."""
        try:
            self.wait_ready(self.start_timeout if timeout is None else timeout)
        except BaseException:
            self.kill()
            raise

    def launch(self) -> None:
        """Start the process without waiting for it (several can then boot in parallel; see `ready`)."""
        if self.is_running():
            return
        self.before_start()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Logs may show connection details and payloads: readable by their owner only (0600).
        with open(os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(self.argv)}\n".encode())
            log.flush()
            argv, user, group = as_user(self.argv, self.user, self.group)
            try:
                self._proc = subprocess.Popen(  # noqa: S603 an argv list, no shell: the mesh's own programs (services, Envoy, NATS, PostgreSQL)
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                    user=user,
                    group=group,
                )
            except FileNotFoundError as exc:
                raise InfraError(
                    f"{self.name}: executable {self.argv[0]} not found; reinstall the project "
                    f"(scripts/_setup.sh installs it into .venv)"
                ) from exc
        self._paused = False
        logger.info("started %s (pid %s), log %s", self.name, self.pid, self.log_path)

    def before_start(self) -> None:
        """Hook run before each start (check ports, prepare directories); does nothing by default."""

    def check_port(self, what: str, host: str, port: int, hint: str = "") -> None:
        """Raise PortInUseError if host:port is taken here (a process run in another network namespace,
        chassis.tooling.hosts, cannot test its ports from ours and overrides this)."""
        ensure_port_free(what, host, port, hint)

    def wait_ready(self, timeout: float) -> None:
        """Return when the process serves; by default, when it is still alive after a short moment."""
        self.poll_until(lambda: True, timeout, "start")

    def stop(self, timeout: float | None = None) -> int | None:
        """Ask the process to exit (`stop_signal`), SIGKILL it after timeout seconds; return its exit code.

        timeout defaults to the class's `stop_timeout`.
        """
        timeout = self.stop_timeout if timeout is None else timeout
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            if self._paused:
                self.resume()
            self._signal(self.stop_signal)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "%s (pid %s) ignored %s for %.1fs; killing it",
                    self.name,
                    proc.pid,
                    self.stop_signal.name,
                    timeout,
                )
                self.kill()
        logger.info("stopped %s (pid %s), exit code %s", self.name, proc.pid, proc.returncode)
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL the process and its process group (e.g. PostgreSQL backends), then reap it."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            # Signal the group while the unreaped leader still holds its pid, so the group id
            # cannot belong to anyone else yet.
            self._signal(signal.SIGKILL, group=True)
            proc.wait()
        self._paused = False

    def pause(self) -> None:
        """Freeze the process and its children (SIGSTOP): it stays up but answers nothing."""
        self._signal(signal.SIGSTOP, group=True)
        self._paused = True

    def resume(self) -> None:
        """Continue a paused process (SIGCONT)."""
        self._signal(signal.SIGCONT, group=True)
        self._paused = False

    # -- state -------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """PID of the current (or last) child, None before the first start."""
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """Exit code of the last child if it has exited, else None."""
        return self._proc.poll() if self._proc is not None else None

    def is_running(self) -> bool:
        """Whether the child has been started and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the log file, for error messages."""
        try:
            text = self.log_path.read_bytes()[-16384:].decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def poll_until(self, check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
        """Call check() until it is true; raise InfraError if the child exits or timeout passes first."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.is_running():
                raise InfraError(
                    f"{self.name} exited with code {self.returncode} before it was ready ({what}); "
                    f"see {self.log_path}:\n{self.log_tail()}"
                )
            if check():
                return
            if time.monotonic() >= deadline:
                raise InfraError(
                    f"{self.name} (pid {self.pid}) was not ready ({what}) within {timeout:.0f}s; "
                    f"see {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(interval)

    # -- internals ---------------------------------------------------------------------------

    def _signal(self, sig: signal.Signals, group: bool = False) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            # The child leads its own session and process group (start_new_session), so its
            # group id is its pid and the group holds only it and its own children.
            if group:
                os.killpg(proc.pid, sig)
            else:
                os.kill(proc.pid, sig)

    def __enter__(self) -> ManagedProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else f"exited({self.returncode})" if self._proc else "new"
        return f"<{type(self).__name__} {self.name} pid={self.pid} {state}>"
