"""The identity service served in this process (real PostgreSQL and NATS, no Envoy).

`identity` is one service per test module: every test names what it creates uniquely (emails,
organization names). The API-key pepper and the signing keys' cipher key come from the environment,
so no key file is generated in the repository's state folder.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import pytest

from tests.support.inprocess import in_process_service

identity = in_process_service("services.identity", scope="module",
                              env={"IDENTITY_APIKEY_CACHE_SECONDS": "0.5"})


@pytest.fixture(scope="module", autouse=True)
def _keys() -> Iterator[None]:
    # load_pepper and load_cipher read the process environment (the in-process harness passes settings,
    # not these). Set per module, before the module's service starts, and removed after: a session-wide
    # variable would reach the meshes the e2e tests start later in the same run.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IDENTITY_APIKEY_PEPPER", base64.b64encode(os.urandom(32)).decode())
        patch.setenv("IDENTITY_ENCRYPTION_KEY", base64.b64encode(os.urandom(32)).decode())
        yield
