"""Events: committed through the outbox and handled by a consumer with its dedup record, vs raw nats-py.

Ours: `outbox-producer` commits a domain row and its event per transaction (P concurrent
producers, as a service serving P requests), the chassis relay in the same process publishes them
to JetStream, and `outbox-consumer` (another service's schema) handles each one in a transaction
that records it in processed_events. Peer: `raw-publisher` publishes the same envelope bytes and
headers straight to a stream of the same configuration, awaiting each ack (one loop: the naive
way, and the method of the issue's 4k msg/s figure), and `raw-subscriber` fetches and acks.
Both run on one PostgreSQL and one nats-server with the durability `protomesh up` uses (fsync on
commit; JetStream `sync_interval: always`).

Measured: the end-to-end rate (events handled per second while producers run flat out), with
the relay's commit-to-stream latency and its backlog (events committed but not yet in the stream)
halfway through and at the end of the measured window, which shows whether the relay keeps up;
then commit-to-handled latency when both are paced at half the naive rate; and an idle mesh
(5 events a second, one producer), where each event has to wake the relay. For the peer
"committed" is the moment its publish starts, so its latency includes the ack round trip.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from bench.core import Context, add_target, load_row, ratio
from bench.loadgen import summarize
from bench.procs import BenchError, Proc, Sampler, python
from chassis.tooling.infra.nats import NatsProcess
from chassis.tooling.infra.postgres import PostgresProcess

SCENARIO = "events"
CONSUMER_CONCURRENCY = 32
RATE_TARGET = 1.25
"""Outbox events handled per second, against the naive publisher's."""
P99_TARGET_MS = 50.0
"""Commit-to-handled p99 at half the naive publisher's rate."""
TO_STREAM_TARGET_MS = 250.0
"""Commit-to-stream p99 of the relay while producers run flat out."""
IDLE_RATE = 5.0
"""Events a second of the idle case: each one finds the relay idle and has to wake it."""


def keeps_up(result: dict[str, Any]) -> bool:
    """The relay kept up at full rate: commit-to-stream p99 within target and a backlog that did not grow
    (at the end at most what it was halfway, give or take a batch)."""
    return (result["to_stream_p99_ms"] <= TO_STREAM_TARGET_MS
            and result["backlog_end"] <= max(result["backlog_mid"] * 1.5, 256))


class Watched:
    """A peer process whose stdout progress lines (`what N`) are followed in a thread."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc
        self.ready = threading.Event()
        self.count = 0
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self.proc.lines():
                if line == "ready":
                    self.ready.set()
                elif line.startswith(("handled ", "committed ")):
                    self.count = int(line.split()[1])
        except (ValueError, OSError):  # stdout closed by stop()
            return

    def wait_ready(self, timeout: float = 60) -> None:
        if not self.ready.wait(timeout):
            raise BenchError(f"{self.proc.name} did not get ready; {self.proc.tail()}")


@dataclass
class Pair:
    """One measured run of a producer and its consumer."""

    name: str
    result: dict[str, Any]
    committed: int
    handled: int


def _pair(summary: dict[str, float]) -> str:
    return f"p50 {summary['p50_ms']:.1f} ms, p99 {summary['p99_ms']:.1f} ms"


def _times(path: Any) -> dict[str, Any]:
    with open(path) as handle:
        return json.load(handle)


def run_pair(ctx: Context, env: dict[str, str], name: str, *, ours: bool, rate: float, producers: int,
             windowed: bool = False) -> Pair:
    """Start the consumer, run the producer for warmup + duration, wait until everything committed is
    handled (bounded), then join committed and handled times per event."""
    opts = ctx.options
    warmup, duration = opts.warmup, opts.duration
    out_p, out_c = ctx.log_dir / f"{name}-produced.json", ctx.log_dir / f"{name}-handled.json"
    consumer_mode, producer_mode = ("outbox-consumer", "outbox-producer") if ours else ("raw-subscriber",
                                                                                       "raw-publisher")
    consumer = Watched(Proc(f"{name}-consumer", python(
        "bench.peers.events_peer", consumer_mode, "--out", str(out_c), "--concurrency", str(CONSUMER_CONCURRENCY)),
        ctx.log_dir, env, capture=True))
    producer: Watched | None = None
    try:
        consumer.wait_ready()
        args = ["--out", str(out_p), "--rate", str(rate), "--producers", str(producers),
                "--seconds", str(warmup + duration)] + (["--windowed"] if windowed else [])
        producer = Watched(Proc(f"{name}-producer", python("bench.peers.events_peer", producer_mode, *args),
                                ctx.log_dir, env, capture=True))
        pids = [consumer.proc.pid, producer.proc.pid]
        with Sampler(pids) as sampler:
            producer.wait_ready()
            producer.proc.popen.wait(warmup + duration + 60)
            # Everything the producer committed should be handled; wait (bounded) for the stragglers.
            produced = _times(out_p)["times"]
            waited = 0.0
            while consumer.count < len(produced) and waited < 30.0:
                threading.Event().wait(0.05)
                waited += 0.05
        cpu = sampler.cpu_used()
        consumer.proc.stop()
        handled_file = _times(out_c)
        handled, stored = handled_file["times"], handled_file.get("stored", {})
    finally:
        consumer.proc.stop()
        if producer is not None:
            producer.proc.stop()
    if not produced:
        raise BenchError(f"{name}: the producer committed nothing; {producer.proc.tail() if producer else ''}")
    start = min(produced.values())
    # Rate: every event produced, from the first commit until the last one was handled (a backlog
    # the consumer works off after the producer stopped counts against the rate).
    done = [handled[e] for e in produced if e in handled]
    span = (max(done) - start) if done else 0.0
    window = (start + warmup, start + warmup + duration)
    committed_in_window = [event_id for event_id, t in produced.items() if window[0] <= t < window[1]]
    latencies = [handled[e] - produced[e] for e in committed_in_window if e in handled]
    to_stored = [stored[e] - produced[e] for e in committed_in_window if e in stored]
    from_stored = [handled[e] - stored[e] for e in committed_in_window if e in stored and e in handled]
    missing = sum(1 for e in produced if e not in handled)
    # The relay's backlog at a moment: events committed before it and stored in the stream after it.
    middle = (window[0] + window[1]) / 2

    def backlog(at: float) -> int:
        return sum(1 for e, t in produced.items() if t < at and stored.get(e, float("inf")) > at)

    result = {
        **summarize(latencies),
        "requests": len(done),
        "elapsed_s": round(span, 3),
        "throughput": round(len(done) / span, 1) if span > 0 else 0.0,
        "committed_per_s": round(len(produced) / (max(produced.values()) - start or 1), 1),
        "to_stream": _pair(summarize(to_stored)),
        "to_stream_p99_ms": summarize(to_stored)["p99_ms"],
        "backlog_mid": backlog(middle),
        "backlog_end": backlog(window[1]),
        "stream_to_handled": _pair(summarize(from_stored)),
        "errors": missing,
        "error_samples": [f"{missing} of {len(produced)} events not handled within 30 s"] if missing else [],
        "peak_rss_mb": round(sampler.peak / 1024 / 1024, 1),
        "server_cpu_us_per_req": round(cpu / len(produced) * 1e6, 1),
    }
    ctx.say(f"    {name:<28} {result['throughput']:>9.1f}/s end to end (produced {result['committed_per_s']:.1f}/s)"
            f"  p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms  unhandled {missing}; to stream "
            f"{result['to_stream']}, stream to handled {result['stream_to_handled']}; backlog mid-window "
            f"{result['backlog_mid']}, at the end {result['backlog_end']}")
    return Pair(name, result, len(produced), len(handled))


def run(ctx: Context) -> None:
    ctx.say(f"==> {SCENARIO}: outbox + relay + consumer (dedup record) vs raw nats-py publish/subscribe")
    pg = PostgresProcess(ctx.work_dir / "events-pg" / "data", durable=True,
                         log_path=ctx.log_dir / "events-postgres.log")
    nats = NatsProcess(ctx.work_dir / "events-nats", durable=True, log_path=ctx.log_dir / "events-nats.log")
    (ctx.work_dir / "events-pg").mkdir(parents=True, exist_ok=True)
    (ctx.work_dir / "events-pg").chmod(0o755)
    pg.start()
    try:
        nats.start()
        env = {"DATABASE_URL": pg.url, "NATS_URL": nats.url}
        naive = run_pair(ctx, env, "raw-await-each-ack", ours=False, rate=0, producers=1)
        windowed = run_pair(ctx, env, "raw-windowed", ours=False, rate=0, producers=1, windowed=True)
        producers = ctx.options.event_producers
        outbox = run_pair(ctx, env, "outbox", ours=True, rate=0, producers=producers)
        half = max(naive.result["throughput"] / 2, 10.0)
        naive_paced = run_pair(ctx, env, "raw-await-each-ack-paced", ours=False, rate=half, producers=1)
        outbox_paced = run_pair(ctx, env, "outbox-paced", ours=True, rate=half, producers=producers)
        own_half = max(outbox.result["throughput"] / 2, 10.0)
        outbox_own = run_pair(ctx, env, "outbox-paced-own-half", ours=True, rate=own_half, producers=producers)
        outbox_idle = run_pair(ctx, env, "outbox-idle", ours=True, rate=IDLE_RATE, producers=1)
    finally:
        nats.stop()
        pg.stop()
    vs = "raw publish awaiting each ack"
    rate_ratio = ratio("rate", outbox.result["throughput"], naive.result["throughput"], target=RATE_TARGET, vs=vs)
    p99_ok = outbox_paced.result["p99_ms"] <= P99_TARGET_MS
    relay_ok = keeps_up(outbox.result)
    full = outbox.result
    ctx.rows += [
        load_row(SCENARIO, "raw nats-py: publish awaiting each ack, pull subscriber", naive.result, role="peer",
                 unit="msg/s"),
        load_row(SCENARIO, "raw nats-py: windowed async publish (1000 acks in flight)", windowed.result, role="info",
                 unit="msg/s"),
        load_row(SCENARIO, f"outbox -> relay -> JetStream -> consumer + dedup record ({producers} producers)",
                 full, role="ours", unit="msg/s", ratios=[rate_ratio],
                 note=f"commit to stream {full['to_stream']}; backlog mid-window {full['backlog_mid']}, "
                      f"at the end {full['backlog_end']}"),
        load_row(SCENARIO, f"raw, paced at {half:.0f}/s (half the naive rate): publish-to-handled",
                 naive_paced.result, role="peer", unit="msg/s"),
        load_row(SCENARIO, f"outbox, paced at {half:.0f}/s: commit-to-handled", outbox_paced.result, role="ours",
                 unit="msg/s", note=f"commit to stream {outbox_paced.result['to_stream']}; stream to handled "
                                    f"{outbox_paced.result['stream_to_handled']}", ratios=[
                     ratio("p99", outbox_paced.result["p99_ms"], naive_paced.result["p99_ms"],
                           higher_is_better=False, vs=vs),
                     {"name": "p99", "vs": "", "value": outbox_paced.result["p99_ms"], "unit": "ms",
                      "target": f"<= {P99_TARGET_MS:g} ms", "met": p99_ok}]),
        load_row(SCENARIO, f"outbox, paced at {own_half:.0f}/s (half its own rate): commit-to-handled",
                 outbox_own.result, role="info", unit="msg/s",
                 note=f"commit to stream {outbox_own.result['to_stream']}; stream to handled "
                      f"{outbox_own.result['stream_to_handled']}"),
        load_row(SCENARIO, f"outbox, idle mesh ({IDLE_RATE:g}/s, each event wakes the relay): commit-to-handled",
                 outbox_idle.result, role="info", unit="msg/s",
                 note=f"commit to stream {outbox_idle.result['to_stream']}; stream to handled "
                      f"{outbox_idle.result['stream_to_handled']}"),
    ]
    add_target(ctx, f"outbox events handled (with dedup record) >= {RATE_TARGET:g}x naive publish awaiting each ack",
               f"{rate_ratio['value']:.2f}x ({full['throughput']:.0f} vs {naive.result['throughput']:.0f}"
               " msg/s)", rate_ratio["met"])
    add_target(ctx, f"p99 commit-to-handled <= {P99_TARGET_MS:g} ms at half the naive rate",
               f"{outbox_paced.result['p99_ms']:.1f} ms at {half:.0f}/s (p50 {outbox_paced.result['p50_ms']:.1f} ms); "
               f"at {own_half:.0f}/s, half its own rate: p99 {outbox_own.result['p99_ms']:.1f} ms; idle "
               f"({IDLE_RATE:g}/s): p99 {outbox_idle.result['p99_ms']:.1f} ms",
               p99_ok)
    add_target(ctx, f"relay keeps up at full rate: commit-to-stream p99 <= {TO_STREAM_TARGET_MS:g} ms, no growing "
               "backlog",
               f"p99 {full['to_stream_p99_ms']:.1f} ms at {full['committed_per_s']:.0f} committed/s; backlog "
               f"mid-window {full['backlog_mid']}, at the end {full['backlog_end']}", relay_ok)
