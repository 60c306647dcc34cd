"""What the strict-JSON filter (chassis.tooling.gateway_strict_json) costs per REST request with a body.

Two Envoys from the same generator, one with the filter and one with it taken out of the chain, in front of
the same recording AgentService backend (tests/infra/agent_backend.py); each sends `--requests` POSTs of a
small body one after another over one keep-alive connection, alternating, `--repeats` times. It prints the
mean time per request of each and the difference. A measurement to read, not a test: nothing asserts it.

    .venv/bin/python -m bench.strict_json_cost [--requests 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chassis.paths import DESCRIPTOR_SET, REPO_ROOT
from chassis.tooling.catalog import load_catalog
from chassis.tooling.envoy_config import build_envoy_config
from chassis.tooling.gateway_strict_json import STRICT_JSON_FILTER
from chassis.tooling.infra.envoy import EnvoyProcess
from chassis.tooling.infra.ports import LOOPBACK, free_port

BODY = json.dumps({"name": "bench", "type": "echo", "description": "a small body", "capabilities": ["a", "b"],
                   "labels": {"team": "x"}, "config": {"k": 1, "nested": {"list": [1, 2, 3]}}}).encode()


def _without_filter(config: dict[str, Any]) -> dict[str, Any]:
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] != STRICT_JSON_FILTER]
    return config


def _run(port: int, requests: int) -> float:
    """Mean seconds per POST over one keep-alive connection."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    headers = {"content-type": "application/json"}
    started = time.perf_counter()
    for _ in range(requests):
        connection.request("POST", "/v1/agents", BODY, headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"POST answered {response.status}")
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT / "tests" / "infra"))
    from agent_backend import AgentBackend  # the recording backend the gateway tests use

    catalog = load_catalog(DESCRIPTOR_SET)
    backend = AgentBackend("bench").start()
    gateways: dict[str, EnvoyProcess] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="strict-json-cost-") as work:
            for name in ("with filter", "without filter"):
                config = build_envoy_config(catalog, {"agent": [backend.address]}, listen_port=free_port(),
                                            admin_port=free_port(), descriptor_set=DESCRIPTOR_SET,
                                            verify_callers=False)
                if name == "without filter":
                    config = _without_filter(config)
                gateways[name] = EnvoyProcess(config, Path(work) / name.replace(" ", "-"))
                gateways[name].start()
            ports = {name: int(gateway.url.rsplit(":", 1)[1]) for name, gateway in gateways.items()}
            for port in ports.values():
                _run(port, 200)  # warm-up: connections, Lua state, backend
            means: dict[str, list[float]] = {name: [] for name in gateways}
            for _ in range(args.repeats):
                for name, port in ports.items():
                    means[name].append(_run(port, args.requests))
            for name, values in means.items():
                print(f"{name}: " + ", ".join(f"{v * 1e6:.0f}" for v in values) + " µs/request")
            with_, without = (statistics.median(means[n]) for n in ("with filter", "without filter"))
            print(f"body {len(BODY)} bytes, {args.requests} POSTs x {args.repeats}: the filter adds "
                  f"{(with_ - without) * 1e6:.0f} µs per request (medians {with_ * 1e6:.0f} vs {without * 1e6:.0f})")
    finally:
        for gateway in gateways.values():
            gateway.stop()
        backend.stop()


if __name__ == "__main__":
    main()
