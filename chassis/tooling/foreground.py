"""Running a mesh in the foreground of a terminal until Ctrl-C (`protomesh up`, `protomesh hosts`).

Ctrl-C and SIGTERM only set a flag: the loop then stops the mesh in order (gateway first, stores last),
which a KeyboardInterrupt raised somewhere inside a start or a restart could not promise.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable

from chassis.tooling.infra.process import InfraError

TICK_SECONDS = 0.5


def run_in_foreground(*, start: Callable[[], None], show: Callable[[], None], tick: Callable[[], object],
                      stop: Callable[[], None], what: str) -> int:
    """Start, show where things run, call `tick` twice a second until Ctrl-C, then stop; the exit code.

    A start that fails says why (exit 1); Ctrl-C during the start stops what was started (exit 130).
    `what` names what stopping takes down, for the progress line.
    """
    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        start()
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if stop_requested:
        stop()
        return 130
    try:
        show()
        while not stop_requested:
            time.sleep(TICK_SECONDS)
            tick()
    finally:
        print(f"\n==> stopping {what} ...", flush=True)
        stop()
        print("    stopped; nothing left behind", flush=True)
    return 0
