"""The field service, described for the chassis to run."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import chassis
from services.field.deps import FieldDeps
from services.field.servicer import FieldServicer
from services.field.settings import FieldSettings
from services.field.store import Store


@contextlib.asynccontextmanager
async def lifespan(replica: chassis.Replica, settings: FieldSettings) -> AsyncIterator[FieldDeps]:
    """Open the store on the replica's pool."""
    yield FieldDeps(settings, Store.open(replica.db))


def build() -> chassis.Service[FieldSettings, FieldDeps]:
    """The field service: farms, fields with GeoJSON boundaries and their history, seasons and activities."""
    return chassis.Service(
        name="field",
        description="Farms and fields with validated GeoJSON boundaries, geodesic areas, boundary history, "
                    "spatial queries, seasons and activities.",
        servicers=[FieldServicer],
        settings=FieldSettings,
        lifespan=lifespan,
        migrations=Path(__file__).parent / "migrations",
    )
