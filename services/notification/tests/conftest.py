"""The notification service served in this process (real PostgreSQL and NATS, no Envoy).

`notification` is one service per test module: every test names what it creates uniquely, and the
calls the contract refuses never reach the servicer. The webhook secrets' key comes from the
environment, so no key file is generated in the repository's state folder.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import pytest

from tests.support.inprocess import in_process_service

notification = in_process_service("services.notification", scope="module",
                                  env={"NOTIFICATION_SMTP_PORT": "9", "NOTIFICATION_SEND_TIMEOUT_SECONDS": "0.5"})
"""NATS is on, so a resend is queued at once; its delivery to the discard port fails quietly in the background."""


@pytest.fixture(scope="module", autouse=True)
def _encryption_key() -> Iterator[None]:
    # load_cipher reads the process environment (the in-process harness passes settings, not this). Set
    # per module, before the module's service starts, and removed after: a session-wide variable would
    # reach the meshes the e2e tests start later in the same run, which must generate their key file.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NOTIFICATION_ENCRYPTION_KEY", base64.b64encode(os.urandom(32)).decode())
        yield
