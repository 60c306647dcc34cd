"""What the field service's lifespan opens and its servicer uses."""

from __future__ import annotations

from dataclasses import dataclass

from services.field.settings import FieldSettings
from services.field.store import Store


@dataclass(frozen=True)
class FieldDeps:
    """The replica's dependencies, typed: no string-keyed state."""

    settings: FieldSettings
    store: Store
