"""The field service served in process for each test: real PostgreSQL and NATS, no Envoy."""

from tests.support.inprocess import in_process_service

field = in_process_service("services.field")
