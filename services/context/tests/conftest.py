"""The context service served in this process, once per test module (real PostgreSQL and NATS, no Envoy).

Module scope: tests create their own contexts (unique names, fresh ids), so they need no fresh
database each, and one start-up per module keeps the servicer tests at milliseconds per test.
"""

from tests.support.inprocess import in_process_service

context_service = in_process_service("services.context", scope="module")
