"""The kinds of clients, by path name and by contract enum."""

from __future__ import annotations

from services.integration.clients import http, nats, postgres, smtp, storage
from services.integration.clients.base import ClientSpec

SPECS: dict[str, ClientSpec] = {spec.client_type: spec for spec in (
    http.SPEC, postgres.SPEC, smtp.SPEC, storage.LOCAL_SPEC, storage.S3_SPEC, nats.SPEC)}
BY_KIND: dict[int, ClientSpec] = {spec.kind: spec for spec in SPECS.values()}
KIND_NAMES: dict[int, str] = {spec.kind: spec.client_type for spec in SPECS.values()}
