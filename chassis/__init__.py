"""The shared runtime of every protomesh service: server, health, config, logs, errors, database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chassis.config import Settings
    from chassis.server import Runtime, Service, Servicer, run, serve

__all__ = ["Runtime", "Service", "Servicer", "Settings", "run", "serve"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import chassis.tooling.infra...` (process helpers, the CLI) does not load the gRPC server.
    if name == "Settings":
        from chassis.config import Settings

        return Settings
    if name in {"Runtime", "Service", "Servicer", "run", "serve"}:
        from chassis import server

        return getattr(server, name)
    raise AttributeError(f"module 'chassis' has no attribute {name!r}")
