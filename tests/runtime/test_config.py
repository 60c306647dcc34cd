"""Settings come from the environment with defaults, and a bad value names its variable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from chassis.config import ConfigError, Settings, Url, load_settings, setting

PLAINTEXT = {"MESH_TLS": "off"}


def test_defaults() -> None:
    settings = Settings.from_env("agent", PLAINTEXT)
    assert settings.grpc_port == 50051 and settings.grpc_host == "127.0.0.1"
    assert settings.database_url is None and settings.instance_id.startswith("agent-")


def test_values_are_parsed() -> None:
    settings = Settings.from_env("agent", {**PLAINTEXT, "GRPC_PORT": "6000", "SHUTDOWN_GRACE_SECONDS": "2.5",
                                           "DATABASE_URL": "postgresql://u@h/db", "LOG_LEVEL": "debug"})
    assert (settings.grpc_port, settings.shutdown_grace_seconds, settings.log_level) == (6000, 2.5, "DEBUG")


@pytest.mark.parametrize(("env", "named"), [
    ({"GRPC_PORT": "eighty"}, "GRPC_PORT"), ({"GRPC_PORT": "70000"}, "GRPC_PORT"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"), ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
    ({"SHUTDOWN_GRACE_SECONDS": "-1"}, "SHUTDOWN_GRACE_SECONDS"),
])
def test_bad_values_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env("agent", {**PLAINTEXT, **env})


def test_a_replica_is_plaintext_only_when_configured_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MESH_TLS_CERT, MESH_TLS_KEY, MESH_TLS_CA not set"):
        Settings.from_env("agent", {})
    assert Settings.from_env("agent", {"MESH_TLS": "off"}).tls is None
    files = {name: tmp_path / name for name in ("MESH_TLS_CERT", "MESH_TLS_KEY", "MESH_TLS_CA")}
    with pytest.raises(ConfigError, match="MESH_TLS_CERT="):  # named but missing: never a fallback to plaintext
        Settings.from_env("agent", {k: str(v) for k, v in files.items()})
    for path in files.values():
        path.write_text("pem")
    env = {k: str(v) for k, v in files.items()}
    tls = Settings.from_env("agent", env).tls
    assert tls is not None and tls.cert == files["MESH_TLS_CERT"] and tls.ca == files["MESH_TLS_CA"]
    with pytest.raises(ConfigError, match="MESH_TLS=off but"):
        Settings.from_env("agent", {**env, "MESH_TLS": "off"})
    with pytest.raises(ConfigError, match="MESH_TLS_KEY not set"):
        Settings.from_env("agent", {"MESH_TLS_CERT": env["MESH_TLS_CERT"], "MESH_TLS_CA": env["MESH_TLS_CA"]})


# --- per-service settings: one loader for every service's frozen dataclass ---------------------------


@dataclass(frozen=True)
class _Demo:
    workers: int = setting(2, low=1, high=64)
    ratio: float = setting(0.5, low=0, high=1)
    enabled: bool = False
    timeout: timedelta = setting(timedelta(seconds=30), low=0.1, high=3600)
    endpoint: Url | None = None
    state: Path = Path("/tmp")
    mode: str = setting("fast", choices=("fast", "safe"))
    name: str = "x"


def test_settings_defaults_when_unset() -> None:
    assert load_settings(_Demo, "DEMO", {}) == _Demo()


def test_settings_parsed_once_by_type() -> None:
    got = load_settings(_Demo, "demo", {
        "DEMO_WORKERS": "8", "DEMO_RATIO": "0.25", "DEMO_ENABLED": "yes", "DEMO_TIMEOUT": "250ms",
        "DEMO_ENDPOINT": "https://example.test:8443/x", "DEMO_STATE": "/var/lib/x", "DEMO_MODE": "SAFE",
        "DEMO_NAME": " spaced ",
    })
    assert got == _Demo(workers=8, ratio=0.25, enabled=True, timeout=timedelta(milliseconds=250),
                        endpoint=Url("https://example.test:8443/x"), state=Path("/var/lib/x"), mode="safe",
                        name="spaced")
    assert load_settings(_Demo, "DEMO", {"DEMO_TIMEOUT": "5m"}).timeout == timedelta(minutes=5)


@pytest.mark.parametrize(("env", "message"), [
    ({"DEMO_WORKERS": "two"}, "DEMO_WORKERS='two' is not a whole number"),
    ({"DEMO_WORKERS": "0"}, "DEMO_WORKERS=0 is too small: use at least 1 (and at most 64)"),
    ({"DEMO_WORKERS": "65"}, "DEMO_WORKERS=65 is too large: use at most 64"),
    ({"DEMO_RATIO": "half"}, "DEMO_RATIO='half' is not a number"),
    ({"DEMO_ENABLED": "maybe"}, "DEMO_ENABLED='maybe' is not a boolean"),
    ({"DEMO_TIMEOUT": "soon"}, "DEMO_TIMEOUT='soon' is not a duration"),
    ({"DEMO_TIMEOUT": "2h"}, "DEMO_TIMEOUT=7200 is too large"),
    ({"DEMO_ENDPOINT": "example.test"}, "DEMO_ENDPOINT='example.test' is not an absolute URL"),
    ({"DEMO_MODE": "reckless"}, "DEMO_MODE='reckless' is not one of fast, safe"),
])
def test_a_bad_setting_names_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_Demo, "DEMO", env)
    assert str(caught.value).startswith(message)


def test_every_service_settings_class_loads_from_an_empty_environment() -> None:
    import importlib
    import pkgutil

    import services

    for module in pkgutil.iter_modules(services.__path__):
        service = importlib.import_module(f"services.{module.name}.app").build()
        if service.settings is not None:
            assert load_settings(service.settings, service.name, {}) == service.settings()
