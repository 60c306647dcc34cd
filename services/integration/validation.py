"""The request checks the contract cannot state: those that depend on the integration's kind.

Names, lengths, label and credential limits, the list filters' forms and the cross-field rules are
buf.validate rules in integration_service.proto, checked before a servicer runs. What stays here
needs the kind (which credential names it takes, its free-form config) or a value the contract
never sees (the x-client-key header). Every violation names its field, never a secret's value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from chassis.errors import Violations
from services.integration.clients.base import ClientSpec, Target
from services.integration.policy import parse_policy

CLIENT_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
"""As the contract's client_key rule, for a key that came in the x-client-key header instead."""
MAX_CONFIG_BYTES = 64 * 1024


def check_credentials(v: Violations, spec: ClientSpec, credentials: Mapping[str, str]) -> None:
    """Only the kind's credential names (emptiness and sizes are the contract's rules)."""
    allowed = ", ".join(spec.credential_fields) or "none"
    for key in credentials:
        v.check(key in spec.credential_fields, f"credentials.{key}",
                f"not a credential of {spec.client_type} integrations (they take: {allowed})")


def check_config(v: Violations, spec: ClientSpec, config: dict[str, Any], credentials: Mapping[str, str]) -> None:
    """The kind's settings plus the resilience, rate_limit and cache objects."""
    if len(json.dumps(config, separators=(",", ":"))) > MAX_CONFIG_BYTES:
        v.add("config", f"at most {MAX_CONFIG_BYTES} bytes of JSON")
        return
    spec.validate_config(v, config, credentials)
    parse_policy(v, config)


def parse_enabled(value: str) -> bool | None:
    """The enabled filter ("", "true" or "false" in any case, as the contract allows)."""
    return None if value == "" else value.lower() == "true"


def parse_label(value: str) -> tuple[str, str | None]:
    """The label filter ("key" or "key=value", as the contract allows): its key and value (None: any)."""
    key, sep, label_value = value.partition("=")
    return key, label_value if sep else None


REBIND = "changing the target needs the credentials again: send credentials with this update (update_mask: " \
         "config,credentials), so they never go to a system they were not given for"


def check_binding(v: Violations, spec: ClientSpec, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Stored credentials stay bound to the system they were given for: a (valid) new config that names
    another host, port, database, bucket... needs them sent again."""
    old, new = spec.binding(before), spec.binding(after)
    for field_path in sorted(set(old) | set(new)):
        v.check(old.get(field_path) == new.get(field_path), field_path, REBIND)


def targets_of(spec: ClientSpec, config: dict[str, Any]) -> list[Target]:
    """Where a valid config connects (none when a value the kind's checks let through cannot be read, e.g.
    a port out of range inside a URL: every connection is checked anyway)."""
    try:
        return spec.targets(config)
    except (KeyError, ValueError, TypeError):
        return []
