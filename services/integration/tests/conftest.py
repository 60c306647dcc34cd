"""The integration service served in this process (real PostgreSQL, no NATS, no Envoy).

`integration` is one service per test module: every test names what it creates uniquely, and the
calls the contract refuses never reach the servicer. The encryption key comes from the environment,
so no key file is generated in the repository's state folder.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import pytest

from tests.support.inprocess import in_process_service

integration = in_process_service("services.integration", nats=False, scope="module")


@pytest.fixture(scope="module", autouse=True)
def _encryption_key() -> Iterator[None]:
    # load_cipher reads the process environment (the in-process harness passes settings, not this).
    # Module scope, set before the service starts and removed after it stops: a mesh started later in
    # the same session (tests/e2e) must not inherit the key.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INTEGRATION_ENCRYPTION_KEY", base64.b64encode(os.urandom(32)).decode())
        yield
