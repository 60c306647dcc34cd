"""An API document as text: JSON as built, or YAML."""

from __future__ import annotations

import json
from typing import Any


def dump(document: dict[str, Any], fmt: str = "json") -> str:
    """The document as JSON (sorted as built) or YAML text."""
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
