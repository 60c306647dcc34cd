"""The shared runtime of every protomesh service: server, health, config, logs, errors, database."""

from chassis.config import Settings
from chassis.server import Runtime, Service, Servicer, run, serve

__all__ = ["Runtime", "Service", "Servicer", "Settings", "run", "serve"]
