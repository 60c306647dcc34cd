"""The field service served in process (real PostgreSQL and NATS, no Envoy), once per test module: each test
works in an organization of its own, so overlaps, lists and spatial answers never meet another test's."""

from tests.support.inprocess import in_process_service

field = in_process_service("services.field", scope="module")
