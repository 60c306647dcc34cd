"""What the integration service's lifespan opens and its servicer uses."""

from __future__ import annotations

from dataclasses import dataclass

from chassis.crypto import Cipher
from services.integration.connections import IntegrationConnections
from services.integration.settings import IntegrationSettings
from services.integration.store import IntegrationStore


@dataclass(frozen=True)
class IntegrationDeps:
    """The integration replica's dependencies, typed: no string-keyed state."""

    settings: IntegrationSettings
    store: IntegrationStore
    cipher: Cipher
    integrations: IntegrationConnections
