"""What `protomesh traces`, `trace` and `logs` show: stored traces and the mesh's collected JSON logs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from chassis.tooling.trace_store import load_traces, render_tree, summarize

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


def list_traces(traces_dir: Path, *, limit: int, service: str | None, min_ms: float) -> list[dict[str, Any]]:
    """Summaries of the newest traces, optionally only those touching a service or slower than min_ms."""
    summaries = [summarize(spans) for spans in load_traces(traces_dir).values()]
    summaries = [s for s in summaries
                 if (not service or service in s["services"]) and s["duration_ms"] >= min_ms]
    return sorted(summaries, key=lambda s: s["start_ns"], reverse=True)[:limit]


def show_trace(traces_dir: Path, trace_id: str) -> str | None:
    """One trace as a tree; a unique prefix of the id is enough."""
    traces = load_traces(traces_dir)
    matches = [t for t in traces if t.startswith(trace_id.lower())]
    if len(matches) != 1:
        return None
    return render_tree(traces[matches[0]])


@dataclass(frozen=True)
class LogFilter:
    """Which log lines to show."""

    service: str | None = None
    level: str = "debug"
    trace_id: str | None = None

    def accepts(self, entry: dict[str, Any]) -> bool:
        """Whether a parsed line passes the filter."""
        if self.service and entry.get("service") != self.service:
            return False
        if LEVELS.get(str(entry.get("level", "info")), 20) < LEVELS[self.level]:
            return False
        return not self.trace_id or str(entry.get("trace_id", "")).startswith(self.trace_id)


_SHOWN_FIRST = ("ts", "level", "service", "instance", "msg", "logger")


def format_entry(entry: dict[str, Any]) -> str:
    """A log entry on one readable line: time, level, instance, message, then the other fields."""
    extras = " ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}"
                      for k, v in entry.items() if k not in _SHOWN_FIRST)
    return (f"{entry.get('ts', '')} {str(entry.get('level', '')).upper():<7} "
            f"{entry.get('instance', entry.get('service', '?')):<12} {entry.get('msg', '')}  {extras}").rstrip()


def _entries(handle: TextIO) -> Iterator[dict[str, Any]]:
    for line in handle:
        line = line.strip()
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue


def read_logs(log_dir: Path, flt: LogFilter, *, last: int) -> list[dict[str, Any]]:
    """The last matching entries across every service log, in time order."""
    entries: list[dict[str, Any]] = []
    for path in sorted(log_dir.glob("*.log")):
        with path.open(errors="replace") as handle:
            entries.extend(e for e in _entries(handle) if flt.accepts(e))
    entries.sort(key=lambda e: str(e.get("ts", "")))
    return entries[-last:] if last else entries


def follow_logs(log_dir: Path, flt: LogFilter, *, poll: float = 0.3,
                until: float | None = None) -> Iterator[dict[str, Any]]:
    """Matching entries as they are written (new log files are picked up too)."""
    offsets = {path: path.stat().st_size for path in log_dir.glob("*.log")}
    while until is None or time.monotonic() < until:
        for path in sorted(log_dir.glob("*.log")):
            start = offsets.get(path, 0)
            with path.open(errors="replace") as handle:
                handle.seek(start)
                yield from (e for e in _entries(handle) if flt.accepts(e))
                offsets[path] = handle.tell()
        time.sleep(poll)
