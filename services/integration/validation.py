"""Request checks shared by the integration RPCs; every violation names its field, never a secret's value."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from chassis.errors import Violations
from services.integration.clients.base import ClientSpec
from services.integration.policy import parse_policy

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}$")
LABEL_KEY = re.compile(r"^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$")
CLIENT_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
MAX_DESCRIPTION = 2000
MAX_CONFIG_BYTES = 64 * 1024
MAX_CREDENTIAL_CHARS = 8192
MAX_LABELS = 32


def check_name(v: Violations, name: str) -> None:
    """1-128 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit."""
    if not name:
        v.add("name", "required")
    else:
        v.check(bool(NAME.match(name)) and name == name.strip(), "name",
                "1-128 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit")


def check_description(v: Violations, description: str) -> None:
    """At most 2000 characters."""
    v.check(len(description) <= MAX_DESCRIPTION, "description", f"at most {MAX_DESCRIPTION} characters")


def check_labels(v: Violations, labels: Mapping[str, str]) -> None:
    """At most 32 labels with short lower-case keys."""
    v.check(len(labels) <= MAX_LABELS, "labels", f"at most {MAX_LABELS} labels")
    for key, value in labels.items():
        v.check(bool(LABEL_KEY.match(key)), f"labels.{key}", "keys are 1-63 lower-case letters, digits, '.', '_', "
                "'-' or '/'")
        v.check(len(value) <= 256, f"labels.{key}", "values are at most 256 characters")


def check_credentials(v: Violations, spec: ClientSpec, credentials: Mapping[str, str]) -> None:
    """Only the kind's credential names, none empty or huge (values are never echoed)."""
    for key, value in credentials.items():
        if key not in spec.credential_fields:
            allowed = ", ".join(spec.credential_fields) or "none"
            v.add(f"credentials.{key}", f"not a credential of {spec.client_type} integrations (they take: {allowed})")
        elif not value:
            v.add(f"credentials.{key}", "must not be empty")
        elif len(value) > MAX_CREDENTIAL_CHARS:
            v.add(f"credentials.{key}", f"at most {MAX_CREDENTIAL_CHARS} characters")


def check_config(v: Violations, spec: ClientSpec, config: dict[str, Any], credentials: Mapping[str, str]) -> None:
    """The kind's settings plus the resilience, rate_limit and cache objects."""
    if len(json.dumps(config, separators=(",", ":"))) > MAX_CONFIG_BYTES:
        v.add("config", f"at most {MAX_CONFIG_BYTES} bytes of JSON")
        return
    spec.validate_config(v, config, credentials)
    parse_policy(v, config)


def parse_enabled(v: Violations, value: str) -> bool | None:
    """The enabled filter: "", "true" or "false"."""
    if value == "":
        return None
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    v.add("enabled", "true, false or empty")
    return None


def parse_label(v: Violations, value: str) -> tuple[str, str | None]:
    """The label filter: "key" or "key=value"."""
    if not value:
        return "", None
    key, sep, label_value = value.partition("=")
    v.check(bool(LABEL_KEY.match(key)), "label", "key or key=value, with a valid label key")
    return key, label_value if sep else None
