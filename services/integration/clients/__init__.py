"""Clients of external systems, one module per kind, all behind the same small interface (clients.base)."""
