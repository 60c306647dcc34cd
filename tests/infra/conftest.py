"""Fixtures of the infrastructure tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def pg_tmp() -> Iterator[Path]:
    """A scratch folder PostgreSQL's system user can reach, outside pytest's tmp_path.

    As root PostgreSQL runs as another user, which must traverse the folder's parents. Every
    pytest session resets /tmp/pytest-of-<user> to 0700, so a concurrent test run would lock
    that user out of a data directory under tmp_path in the middle of a test.
    """
    folder = Path(tempfile.mkdtemp(prefix="protomesh-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
