"""Encryption at rest (chassis.crypto): round trip, wrong key or row fails, fresh nonces, key sources."""

from __future__ import annotations

import base64
import logging
import os
import stat
from pathlib import Path

import pytest

from chassis.config import ConfigError
from chassis.crypto import Cipher, DecryptionError, Sealed, load_cipher

# pragma: allowlist nextline secret - fake credential, test input
SECRET = {"password": "hunter2-very-secret", "token": "tok_abc"}


def cipher() -> Cipher:
    return Cipher(os.urandom(32))


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_round_trip_and_nothing_in_clear() -> None:
    c = cipher()
    sealed = c.seal(SECRET, "id-1")
    assert sealed is not None and sealed.key_id == c.key_id and len(sealed.nonce) == 12
    assert b"hunter2" not in sealed.ciphertext and b"password" not in sealed.ciphertext
    assert c.open(sealed, "id-1") == SECRET
    assert c.seal({}, "id-1") is None and c.open(None, "id-1") == {}


def test_bytes_round_trip() -> None:
    c = cipher()
    sealed = c.seal_bytes(b"webhook-secret-0123", "row-1")
    assert b"webhook" not in sealed.ciphertext and len(sealed.nonce) == 12
    assert c.open_bytes(sealed, "row-1") == b"webhook-secret-0123"
    assert "webhook" not in repr(sealed) and c.key_id in repr(c)
    with pytest.raises(DecryptionError, match="do not decrypt"):
        c.open_bytes(sealed, "row-2")


def test_wrong_key_fails_with_a_clear_error() -> None:
    sealed = cipher().seal(SECRET, "id-1")
    with pytest.raises(DecryptionError, match="encrypted with key"):
        cipher().open(sealed, "id-1")


def test_wrong_key_error_names_the_variables_to_set() -> None:
    sealed = cipher().seal_bytes(b"x", "id-1")
    other = load_cipher("notification", {"NOTIFICATION_ENCRYPTION_KEY": b64(os.urandom(32))})
    with pytest.raises(DecryptionError, match="NOTIFICATION_ENCRYPTION_KEY or NOTIFICATION_ENCRYPTION_KEY_FILE or "
                                              "PROTOMESH_ENCRYPTION_KEY or PROTOMESH_ENCRYPTION_KEY_FILE"):
        other.open_bytes(sealed, "id-1", what="webhook secret")


def test_same_key_id_but_other_bytes_or_other_row_fails() -> None:
    c = cipher()
    sealed = c.seal(SECRET, "id-1")
    assert sealed is not None
    with pytest.raises(DecryptionError, match="do not decrypt") as caught:
        c.open(sealed, "id-2")
    assert "hunter2" not in str(caught.value)
    tampered = Sealed(sealed.ciphertext[:-1] + bytes([sealed.ciphertext[-1] ^ 1]), sealed.nonce, sealed.key_id)
    with pytest.raises(DecryptionError):
        c.open(tampered, "id-1")


def test_nonce_is_never_reused() -> None:
    c = cipher()
    seals = [c.seal(SECRET, "id-1") for _ in range(2000)]
    assert len({s.nonce for s in seals if s}) == 2000
    assert len({s.ciphertext for s in seals if s}) == 2000, "same plaintext, different ciphertext every time"


def test_key_from_env_and_bad_keys_name_the_variable() -> None:
    key = os.urandom(32)
    c = load_cipher("integration", {"INTEGRATION_ENCRYPTION_KEY": b64(key)})
    assert c.source == "env" and c.key_id == Cipher(key).key_id
    with pytest.raises(ConfigError, match="INTEGRATION_ENCRYPTION_KEY"):
        load_cipher("integration", {"INTEGRATION_ENCRYPTION_KEY": b64(b"short")})
    with pytest.raises(ConfigError, match="not base64"):
        load_cipher("integration", {"INTEGRATION_ENCRYPTION_KEY": "not base64!"})


def test_key_file_base64_or_raw(tmp_path: Path) -> None:
    key = os.urandom(32)
    (tmp_path / "b64").write_text(b64(key) + "\n")
    (tmp_path / "raw").write_bytes(key)
    for name in ("b64", "raw"):
        c = load_cipher("integration", {"INTEGRATION_ENCRYPTION_KEY_FILE": str(tmp_path / name)})
        assert c.source == "file" and c.key_id == Cipher(key).key_id
    with pytest.raises(ConfigError, match="cannot read"):
        load_cipher("integration", {"INTEGRATION_ENCRYPTION_KEY_FILE": str(tmp_path / "missing")})


def test_service_variables_win_over_the_mesh_ones(tmp_path: Path) -> None:
    own, mesh, from_file = os.urandom(32), os.urandom(32), os.urandom(32)
    (tmp_path / "key").write_text(b64(from_file))
    both = {"NOTIFICATION_ENCRYPTION_KEY": b64(own), "PROTOMESH_ENCRYPTION_KEY": b64(mesh)}
    assert load_cipher("notification", both).key_id == Cipher(own).key_id
    assert load_cipher("integration", both).key_id == Cipher(mesh).key_id, "another service's variable is not read"
    own_file = {"NOTIFICATION_ENCRYPTION_KEY_FILE": str(tmp_path / "key"), "PROTOMESH_ENCRYPTION_KEY": b64(mesh)}
    assert load_cipher("notification", own_file).key_id == Cipher(from_file).key_id
    mesh_file = {"PROTOMESH_ENCRYPTION_KEY_FILE": str(tmp_path / "key"), "PROTOMESH_STATE_DIR": str(tmp_path)}
    assert load_cipher("notification", mesh_file).source == "file"
    with pytest.raises(ConfigError, match="PROTOMESH_ENCRYPTION_KEY"):
        load_cipher("notification", {"PROTOMESH_ENCRYPTION_KEY": "not base64!"})
    assert not (tmp_path / "notification").exists(), "no key file is generated when a key is configured"


def test_generated_key_file_is_0600_reused_and_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    first = load_cipher("integration", {"PROTOMESH_STATE_DIR": str(tmp_path)})
    path = tmp_path / "integration" / "encryption.key"
    assert first.source == "generated file"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_cipher("integration", {"PROTOMESH_STATE_DIR": str(tmp_path)})
    assert second.key_id == first.key_id, "the second replica reads the same key"
    assert str(path) in caplog.text
    assert path.read_text().strip() not in caplog.text
    assert path.read_text().strip() not in repr(first)
    sealed = first.seal(SECRET, "x")
    assert second.open(sealed, "x") == SECRET


def test_each_service_generates_its_own_key(tmp_path: Path) -> None:
    env = {"PROTOMESH_STATE_DIR": str(tmp_path)}
    integration, notification = load_cipher("integration", env), load_cipher("notification", env)
    assert (tmp_path / "notification" / "encryption.key").exists()
    assert integration.key_id != notification.key_id


def test_replicas_generating_at_once_agree_on_one_key(tmp_path: Path) -> None:
    """Processes racing to create the key file all end up with the winner's key."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(6) as pool:
        ids = pool.map(_key_id_in, [str(tmp_path)] * 12)
    assert len(set(ids)) == 1
    assert [p.name for p in (tmp_path / "svc").iterdir()] == ["encryption.key"], "no temporary file is left"


def _key_id_in(state_dir: str) -> str:
    return load_cipher("svc", {"PROTOMESH_STATE_DIR": state_dir}).key_id
