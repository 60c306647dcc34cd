"""An API document as text: JSON as built, or YAML."""

from __future__ import annotations

import json
from typing import Any


def dump(document: dict[str, Any], fmt: str = "json") -> str:
    """The document as JSON (sorted as built) or YAML text."""
    if fmt == "yaml":
        import yaml

        # libyaml's emitter (PyYAML's wheels ship it) is ~10x the pure-Python one: the supervisor writes nine
        # YAML documents of up to ~400 KB on every mesh start.
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        return yaml.dump(document, Dumper=dumper, sort_keys=False, allow_unicode=True, width=120)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
