"""Settings come from the environment with defaults, and a bad value names its variable."""

from __future__ import annotations

import pytest

from chassis.config import ConfigError, Settings


def test_defaults() -> None:
    settings = Settings.from_env("agent", {})
    assert settings.grpc_port == 50051 and settings.grpc_host == "127.0.0.1"
    assert settings.database_url is None and settings.instance_id.startswith("agent-")


def test_values_are_parsed() -> None:
    settings = Settings.from_env("agent", {"GRPC_PORT": "6000", "SHUTDOWN_GRACE_SECONDS": "2.5",
                                           "DATABASE_URL": "postgresql://u@h/db", "LOG_LEVEL": "debug"})
    assert (settings.grpc_port, settings.shutdown_grace_seconds, settings.log_level) == (6000, 2.5, "DEBUG")


@pytest.mark.parametrize(("env", "named"), [
    ({"GRPC_PORT": "eighty"}, "GRPC_PORT"), ({"GRPC_PORT": "70000"}, "GRPC_PORT"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"), ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
    ({"SHUTDOWN_GRACE_SECONDS": "-1"}, "SHUTDOWN_GRACE_SECONDS"),
])
def test_bad_values_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env("agent", env)
