"""What the context service's lifespan opens and its servicer and cleanup loop use."""

from __future__ import annotations

from dataclasses import dataclass

from services.context.settings import ContextSettings
from services.context.store import ContextStore


@dataclass(frozen=True)
class ContextDeps:
    """The context replica's dependencies, typed: no string-keyed state."""

    settings: ContextSettings
    store: ContextStore
