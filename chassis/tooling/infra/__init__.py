"""Real infrastructure processes (PostgreSQL, NATS, Envoy) run as children we own by PID."""

from __future__ import annotations

from chassis.tooling.infra.ports import free_port, port_in_use, wait_for_port
from chassis.tooling.infra.process import InfraError, ManagedProcess, PortInUseError

__all__ = ["InfraError", "ManagedProcess", "PortInUseError", "free_port", "port_in_use", "wait_for_port"]
