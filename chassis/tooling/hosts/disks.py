"""Small disks: a tmpfs of a fixed size mounted on a folder (a NATS node's store), filled up and freed on demand."""

from __future__ import annotations

import contextlib
import errno
import subprocess
from dataclasses import dataclass
from pathlib import Path

from chassis.tooling.infra.process import InfraError

FILLER = "protomesh-filler"
"""The file `fill` writes until the disk is full (and `free` deletes)."""
_CHUNK = b"\0" * (1 << 20)


@dataclass
class SmallDisk:
    """A tmpfs of `size` (mount's syntax: 64m) on `path`, mounted by `mount()` and removed by `unmount()`."""

    path: Path
    size: str
    mounted: bool = False

    def mount(self) -> None:
        """Mount the tmpfs on path (created if missing); only root may."""
        self.path.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0700", "tmpfs",  # noqa: S603,S607 an argv list, no shell: the system's mount, as root
                                 str(self.path)], capture_output=True, text=True, check=False, timeout=30)
        if result.returncode != 0:
            raise InfraError(f"mounting a {self.size} tmpfs on {self.path} failed: {result.stderr.strip()}")
        self.mounted = True

    def fill(self) -> int:
        """Write a filler file until the disk has no byte left; the bytes written."""
        written = 0
        with open(self.path / FILLER, "ab", buffering=0) as filler:  # unbuffered: ENOSPC comes from write()
            try:
                while True:
                    written += filler.write(_CHUNK) or 0
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        return written

    def free(self) -> None:
        """Delete the filler file."""
        (self.path / FILLER).unlink(missing_ok=True)

    def unmount(self) -> None:
        """Unmount (lazily, should a process still hold a file there); never raises."""
        if self.mounted:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False, timeout=30)  # noqa: S603,S607 an argv list, no shell: the system's umount
            self.mounted = False
