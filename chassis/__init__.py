"""The shared runtime of every protomesh service: server, health, config, logs, errors, database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chassis.authz import Tenant, acting_for, permissions_of, tenant
    from chassis.config import Settings, load_settings, setting
    from chassis.identity import Principal, current_principal, require_principal, service_principal
    from chassis.replica import Replica
    from chassis.server import main, run, serve
    from chassis.service import Loop, Service

__all__ = ["Loop", "Principal", "Replica", "Service", "Settings", "Tenant", "acting_for", "current_principal",
           "load_settings", "main", "permissions_of", "require_principal", "run", "serve", "service_principal",
           "setting", "tenant"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import chassis.tooling.infra...` (process helpers, the CLI) does not load the gRPC server.
    if name in {"Settings", "load_settings", "setting"}:
        from chassis import config

        return getattr(config, name)
    if name in {"Tenant", "acting_for", "permissions_of", "tenant"}:
        from chassis import authz

        return getattr(authz, name)
    if name in {"Principal", "current_principal", "require_principal", "service_principal"}:
        from chassis import identity

        return getattr(identity, name)
    if name in {"Loop", "Service"}:
        from chassis import service

        return getattr(service, name)
    if name == "Replica":
        from chassis.replica import Replica

        return Replica
    if name in {"main", "run", "serve"}:
        from chassis import server

        return getattr(server, name)
    raise AttributeError(f"module 'chassis' has no attribute {name!r}")
