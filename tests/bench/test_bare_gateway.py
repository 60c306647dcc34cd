"""The bare stack's Envoy config: the mesh gateway's own pieces, cut down, and accepted by the real Envoy."""

from __future__ import annotations

import json
from pathlib import Path

from bench.bare_gateway import KEPT_FILTERS, TRANSCODER, bare_config
from chassis.paths import DESCRIPTOR_SET
from chassis.tooling.catalog import load_catalog
from chassis.tooling.eds import write_endpoints
from chassis.tooling.envoy_config import UpstreamTls, build_envoy_config, write_sds
from chassis.tooling.gateway_auth import JWT_AUTHN
from chassis.tooling.infra.envoy import validate_config

GET_AGENT = "/protomesh.agent.v1.AgentService/GetAgent"


def _gateway(tmp_path: Path) -> dict:
    tls = UpstreamTls(cert_dir=tmp_path / "pki", sds_dir=tmp_path / "sds")
    write_sds(tls)
    return build_envoy_config(load_catalog(DESCRIPTOR_SET), {}, listen_port=18080, admin_port=18081,
                              descriptor_set=DESCRIPTOR_SET, eds_dir=tmp_path / "eds", upstream_tls=tls,
                              issuer="http://127.0.0.1:18080", otlp=("127.0.0.1", 4317))


def _hcm(config: dict) -> dict:
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def test_keeps_the_gateways_token_check_transcoder_and_upstream_tls_and_nothing_else(tmp_path: Path) -> None:
    gateway = _gateway(tmp_path)
    before = json.dumps(gateway, sort_keys=True)
    bare = bare_config(gateway, service="agent", grpc_path=GET_AGENT, servers=[("127.0.0.1", 50001),
                       ("127.0.0.1", 50002)], listen_port=19080, admin_port=19081)
    assert json.dumps(gateway, sort_keys=True) == before, "the gateway's config is left as it was"
    ours, theirs = _hcm(bare), _hcm(gateway)
    assert [f["name"] for f in ours["http_filters"]] == list(KEPT_FILTERS)
    gateway_filters = {f["name"]: f for f in theirs["http_filters"]}
    for name in (JWT_AUTHN, TRANSCODER):
        assert next(f for f in ours["http_filters"] if f["name"] == name) == gateway_filters[name]
    assert "access_log" not in ours and "tracing" not in ours
    assert ours["codec_type"] == theirs["codec_type"] and ours["normalize_path"] == theirs["normalize_path"]
    clusters = {c["name"]: c for c in bare["static_resources"]["clusters"]}
    gateway_clusters = {c["name"]: c for c in gateway["static_resources"]["clusters"]}
    assert set(clusters) == {"agent", "identity_http"}
    assert clusters["identity_http"] == gateway_clusters["identity_http"]  # JWKS from the mesh's identity replicas
    agent = clusters["agent"]
    assert agent["transport_socket"] == gateway_clusters["agent"]["transport_socket"]  # the same mTLS
    assert agent["typed_extension_protocol_options"] == gateway_clusters["agent"]["typed_extension_protocol_options"]
    assert "health_checks" not in agent and "outlier_detection" not in agent and agent["type"] == "STATIC"
    endpoints = agent["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert [e["endpoint"]["address"]["socket_address"]["port_value"] for e in endpoints] == [50001, 50002]
    [route] = ours["route_config"]["virtual_hosts"][0]["routes"]
    assert route["route"]["cluster"] == "agent" and "retry_policy" not in route["route"]
    assert "overload_manager" not in bare and "layered_runtime" not in bare


def test_envoy_accepts_it(tmp_path: Path) -> None:
    write_endpoints(tmp_path / "eds", "identity_http", [("127.0.0.1", 50003)], 1)  # the mesh's bridge writes it
    bare = bare_config(_gateway(tmp_path), service="agent", grpc_path=GET_AGENT, servers=[("127.0.0.1", 50001)],
                       listen_port=19080, admin_port=19081)
    validate_config(bare, tmp_path)
