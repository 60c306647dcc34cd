"""The resolved view of a context: its layers applied in order as JSON Merge Patches (RFC 7396)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply one patch: objects merge key by key (recursively), null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def resolve(layers: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Layers' data merged in the given order; later layers win."""
    resolved: dict[str, Any] = {}
    for data in layers:
        resolved = merge_patch(resolved, data)
    return resolved
