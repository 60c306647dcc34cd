"""What a release judges green by: calls, server errors and p99 per colour, read from the replicas'
metrics and Envoy's per-endpoint stats, and the verdict against the release's thresholds.

Why both sources: Envoy counts a gRPC error as an HTTP 200 (the status travels in trailers), so only
the replicas know which calls failed and how long their code took; Envoy alone sees what never
reached a replica's code (refused connections, resets, timeouts). A replica's counters are read
before and after a window and subtracted, so figures cover exactly one step's bake time.
"""

from __future__ import annotations

import json
import math
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

SERVER_ERROR_CODES = frozenset({"UNKNOWN", "INTERNAL", "UNAVAILABLE", "DEADLINE_EXCEEDED", "DATA_LOSS",
                                "UNIMPLEMENTED"})
"""gRPC codes that mean the service failed, not the caller (a 400 or 404 is the caller's mistake)."""
INFRA_METHOD_PREFIXES = ("/grpc.health.", "/grpc.reflection.")
"""Envoy's health checks and reflection are not traffic: they would dilute the error rate and p99."""
REQUESTS_METRIC = "protomesh_rpc_requests"
DURATION_METRIC = "protomesh_rpc_duration_seconds"
ENVOY_ERROR_STATS = ("rq_error", "rq_timeout", "cx_connect_fail")


@dataclass
class Counts:
    """Cumulative counters of some replicas (or their difference over a window)."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)
    """Latency histogram: upper bound in seconds -> calls at or under it (cumulative, Prometheus style)."""

    def add(self, other: Counts) -> Counts:
        """The sum of two (two replicas of one colour)."""
        merged = dict(self.buckets)
        for bound, count in other.buckets.items():
            merged[bound] = merged.get(bound, 0.0) + count
        return Counts(self.requests + other.requests, self.errors + other.errors, merged)

    def since(self, earlier: Counts) -> Counts:
        """What happened after `earlier`; a counter that went down (the replica restarted) counts from zero."""
        def delta(now: float, then: float) -> float:
            return now - then if now >= then else now
        return Counts(delta(self.requests, earlier.requests), delta(self.errors, earlier.errors),
                      {b: delta(c, earlier.buckets.get(b, 0.0)) for b, c in self.buckets.items()})

    def quantile(self, q: float) -> float | None:
        """The q-quantile of the latency in seconds, interpolated inside its bucket; None without calls."""
        bounds = sorted(self.buckets)
        total = self.buckets.get(math.inf, self.buckets[bounds[-1]] if bounds else 0.0)
        if total <= 0:
            return None
        rank = q * total
        lower_bound, lower_count = 0.0, 0.0
        for bound in bounds:
            count = self.buckets[bound]
            if count >= rank:
                if math.isinf(bound):
                    return lower_bound  # beyond the last finite bucket: its bound is all we know
                inside = count - lower_count
                return lower_bound + (bound - lower_bound) * ((rank - lower_count) / inside if inside else 1.0)
            lower_bound, lower_count = bound, count
        return lower_bound


def parse_replica_metrics(text: str, service: str) -> Counts:
    """A replica's /metrics page reduced to its service's calls, server errors and latency buckets."""
    counts = Counts()
    for family in text_string_to_metric_families(text):
        if family.name not in (REQUESTS_METRIC, DURATION_METRIC):
            continue
        for sample in family.samples:
            labels = sample.labels
            if labels.get("service") != service or labels.get("method", "").startswith(INFRA_METHOD_PREFIXES):
                continue
            if sample.name == f"{REQUESTS_METRIC}_total":
                counts.requests += sample.value
                if labels.get("code") in SERVER_ERROR_CODES:
                    counts.errors += sample.value
            elif sample.name == f"{DURATION_METRIC}_bucket":
                bound = float(labels["le"])
                counts.buckets[bound] = counts.buckets.get(bound, 0.0) + sample.value
    return counts


def scrape_replica(metrics_url: str, service: str, timeout: float = 2.0) -> Counts:
    """Read one replica's counters (an unreachable replica reads as nothing: it is judged dead elsewhere)."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=timeout) as reply:  # noqa: S310 an http:// URL of a replica the supervisor started
            return parse_replica_metrics(reply.read().decode(), service)
    except OSError:
        return Counts()


def parse_envoy_hosts(clusters_json: str, cluster: str) -> dict[str, dict[str, float]]:
    """Envoy's /clusters?format=json reduced to host:port -> {rq_total, rq_error, ...} of one cluster."""
    hosts: dict[str, dict[str, float]] = {}
    for status in json.loads(clusters_json).get("cluster_statuses", []):
        if status.get("name") != cluster:
            continue
        for host in status.get("host_statuses", []):
            socket = host.get("address", {}).get("socket_address", {})
            target = f"{socket.get('address')}:{socket.get('port_value')}"
            hosts[target] = {stat["name"]: float(stat.get("value", 0)) for stat in host.get("stats", [])}
    return hosts


def scrape_envoy_hosts(admin: str, cluster: str, timeout: float = 2.0) -> dict[str, dict[str, float]]:
    """Per-endpoint stats of one cluster from Envoy's admin port (host:port); empty when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{admin}/clusters?format=json", timeout=timeout) as reply:
            return parse_envoy_hosts(reply.read().decode(), cluster)
    except (OSError, ValueError):
        return {}


def gateway_errors(before: Mapping[str, Mapping[str, float]], after: Mapping[str, Mapping[str, float]],
                   targets: Iterable[str]) -> float:
    """Calls Envoy saw fail at these endpoints between two readings (resets, timeouts, refused connections)."""
    total = 0.0
    for target in targets:
        for stat in ENVOY_ERROR_STATS:
            now, then = after.get(target, {}).get(stat, 0.0), before.get(target, {}).get(stat, 0.0)
            total += now - then if now >= then else now
    return total


@dataclass(frozen=True)
class Thresholds:
    """When green is worse than blue enough to roll back."""

    max_error_rate: float = 0.05
    """Green's server errors over its calls in one step, above which it rolls back."""
    p99_ratio: float = 1.5
    """Green's p99 may be this many times blue's ..."""
    p99_slack_ms: float = 100.0
    """... and this much slower in absolute terms (a few ms of noise on a busy machine is no regression)."""
    min_requests: int = 20
    """Green calls a step needs before its figures count (fewer: the bake is extended)."""


P99_MIN_CALLS = 100
"""Below this many calls a p99 is the slowest call (one cold start): p90 is compared instead, for both colours."""


@dataclass(frozen=True)
class Figures:
    """One colour over one window, as printed and judged."""

    requests: int
    errors: int
    p90_ms: float | None
    p99_ms: float | None

    @classmethod
    def of(cls, counts: Counts, extra_errors: float = 0.0) -> Figures:
        """From counters (plus errors only the gateway saw, which also count as calls)."""
        def ms(q: float) -> float | None:
            value = counts.quantile(q)
            return None if value is None else value * 1000
        return cls(int(counts.requests + extra_errors), int(counts.errors + extra_errors), ms(0.90), ms(0.99))

    @property
    def error_rate(self) -> float:
        """Errors over calls (0 without calls)."""
        return self.errors / self.requests if self.requests else 0.0

    def latency(self, name: str) -> float | None:
        """`p90` or `p99` in ms."""
        return self.p99_ms if name == "p99" else self.p90_ms

    def describe(self) -> str:
        """e.g. `41 calls, 9 errors (22.0%), p90 8 ms, p99 12 ms`."""
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.0f} ms"
        return (f"{self.requests} calls, {self.errors} errors ({self.error_rate:.1%}), p90 {ms(self.p90_ms)}, "
                f"p99 {ms(self.p99_ms)}")


@dataclass(frozen=True)
class Verdict:
    """What a step's figures say: healthy, a breach (roll back), or too little traffic to tell yet."""

    breach: str | None = None
    enough: bool = True

    @property
    def healthy(self) -> bool:
        """Enough traffic and no breach."""
        return self.enough and self.breach is None


def judge(errors: Figures, latency: Figures, blue: Figures, thresholds: Thresholds) -> Verdict:
    """Green's error rate (`errors`: this step) against the threshold and its latency (`latency`: since green
    took traffic) against blue's, once green served `min_requests` calls in this step.

    The latency compared is p99, or p90 while green has served fewer than P99_MIN_CALLS calls.
    """
    rate_breach = f"green error rate {errors.error_rate:.1%} over {thresholds.max_error_rate:.1%}"
    if errors.requests < thresholds.min_requests:
        # A burst of errors is a breach even before the sample is complete: waiting would only hurt more callers.
        burst = thresholds.min_requests * thresholds.max_error_rate + 1
        if errors.errors >= burst and errors.error_rate > thresholds.max_error_rate:
            return Verdict(rate_breach)
        return Verdict(enough=False)
    if errors.error_rate > thresholds.max_error_rate:
        return Verdict(rate_breach)
    name = "p99" if latency.requests >= P99_MIN_CALLS else "p90"
    green_ms, blue_ms = latency.latency(name), blue.latency(name)
    if green_ms is not None and blue_ms is not None:
        limit = max(blue_ms * thresholds.p99_ratio, blue_ms + thresholds.p99_slack_ms)
        if green_ms > limit:
            return Verdict(f"green {name} {green_ms:.0f} ms over {limit:.0f} ms (blue's {blue_ms:.0f} ms "
                           f"x{thresholds.p99_ratio:g}, +{thresholds.p99_slack_ms:.0f} ms)")
    return Verdict()


def total(counts: Sequence[Counts]) -> Counts:
    """The sum of several replicas' counters."""
    result = Counts()
    for item in counts:
        result = result.add(item)
    return result
