"""The field service."""
