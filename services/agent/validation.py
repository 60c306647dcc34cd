"""The agent service's request rules that its contract cannot state.

Names, types, capabilities, descriptions, labels and page sizes are checked from the contract's
buf.validate rules before a servicer runs. What is left needs the JSON a Struct stands for (the
config's size) or the agent as stored (its type decides which input an execution takes).
"""

from __future__ import annotations

import json
from typing import Any

from chassis.errors import Violations
from services.agent.agent_types import AGENT_TYPES

MAX_CONFIG_BYTES = 64 * 1024


def check_config(v: Violations, config: dict[str, Any]) -> None:
    """A config of at most MAX_CONFIG_BYTES as JSON (protovalidate cannot measure a Struct)."""
    v.check(len(json.dumps(config)) <= MAX_CONFIG_BYTES, "config", f"at most {MAX_CONFIG_BYTES} bytes as JSON")


def check_input(v: Violations, agent_type: str, data: dict[str, Any]) -> None:
    """The agent type's own input rules, on the input merged with the stored agent's config."""
    AGENT_TYPES[agent_type].validate(data, v)
