"""The field service's PostgreSQL access, in parts: farms, fields (with boundary history), reshaping (split,
merge, import), spatial queries, seasons and activities."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from services.field.store.farms import FarmStore
from services.field.store.fields import FieldFilter, FieldStore, NewField
from services.field.store.reshape import Part, ReshapeStore
from services.field.store.seasons import SeasonStore
from services.field.store.spatial import SpatialStore

__all__ = ["FieldFilter", "NewField", "Part", "Store"]


@dataclass(frozen=True)
class Store:
    """Every part of the store, over one pool."""

    farms: FarmStore
    fields: FieldStore
    reshape: ReshapeStore
    spatial: SpatialStore
    seasons: SeasonStore

    @classmethod
    def open(cls, pool: AsyncConnectionPool) -> Store:
        """The store's parts on the replica's pool."""
        return cls(FarmStore(pool), FieldStore(pool), ReshapeStore(pool), SpatialStore(pool), SeasonStore(pool))
