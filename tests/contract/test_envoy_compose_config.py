"""The committed Envoy config for compose is what the generator makes from the contracts now."""

from __future__ import annotations

import json
from pathlib import Path

from chassis.paths import DESCRIPTOR_SET, ENVOY_DIR
from chassis.tooling.envoy_config import COMPOSE_DESCRIPTOR_PATH, compose_envoy_config
from chassis.tooling.infra.envoy import validate_config


def test_compose_envoy_config_is_fresh() -> None:
    committed = json.loads((ENVOY_DIR / "compose" / "envoy.json").read_text())
    assert committed == compose_envoy_config(), (
        "envoy/compose/envoy.json is stale: run scripts/gen_protos (or `.venv/bin/protomesh gen`)")


def test_compose_envoy_config_is_valid_for_envoy(tmp_path: Path) -> None:
    # In the container the descriptor set is mounted at /etc/envoy; here it is read from gen/.
    local = json.loads(json.dumps(compose_envoy_config()).replace(str(COMPOSE_DESCRIPTOR_PATH), str(DESCRIPTOR_SET)))
    validate_config(local, tmp_path)
