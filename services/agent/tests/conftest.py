"""The agent service served in this process (real PostgreSQL and NATS, no Envoy).

`agent` is a fresh service (own database, own NATS) per test, for tests that count or change what
others would see; `shared_agent` is one per module, for calls the contract's rules refuse before
the servicer runs and for reads that do not depend on what else is stored.
"""

from tests.support.inprocess import in_process_service

agent = in_process_service("services.agent", env={"AGENT_WORKERS": "1"})
shared_agent = in_process_service("services.agent", env={"AGENT_WORKERS": "1"}, scope="module")
