"""Credential encryption: round trip, wrong key or row fails, fresh nonces, key sources."""

from __future__ import annotations

import base64
import logging
import os
import stat
from pathlib import Path

import pytest

from chassis.config import ConfigError
from services.integration.crypto import CredentialCipher, DecryptionError, Sealed, load_cipher

SECRET = {"password": "hunter2-very-secret", "token": "tok_abc"}


def cipher() -> CredentialCipher:
    return CredentialCipher(os.urandom(32))


def test_round_trip_and_nothing_in_clear() -> None:
    c = cipher()
    sealed = c.seal(SECRET, "id-1")
    assert sealed is not None and sealed.key_id == c.key_id and len(sealed.nonce) == 12
    assert b"hunter2" not in sealed.ciphertext and b"password" not in sealed.ciphertext
    assert c.open(sealed, "id-1") == SECRET
    assert c.seal({}, "id-1") is None and c.open(None, "id-1") == {}


def test_wrong_key_fails_with_a_clear_error() -> None:
    sealed = cipher().seal(SECRET, "id-1")
    with pytest.raises(DecryptionError, match="encrypted with key"):
        cipher().open(sealed, "id-1")


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
    c = load_cipher({"INTEGRATION_ENCRYPTION_KEY": base64.b64encode(key).decode()})
    assert c.source == "env" and c.key_id == CredentialCipher(key).key_id
    with pytest.raises(ConfigError, match="INTEGRATION_ENCRYPTION_KEY"):
        load_cipher({"INTEGRATION_ENCRYPTION_KEY": base64.b64encode(b"short").decode()})
    with pytest.raises(ConfigError, match="not base64"):
        load_cipher({"INTEGRATION_ENCRYPTION_KEY": "not base64!"})


def test_key_file_base64_or_raw(tmp_path: Path) -> None:
    key = os.urandom(32)
    (tmp_path / "b64").write_text(base64.b64encode(key).decode() + "\n")
    (tmp_path / "raw").write_bytes(key)
    for name in ("b64", "raw"):
        c = load_cipher({"INTEGRATION_ENCRYPTION_KEY_FILE": str(tmp_path / name)})
        assert c.source == "file" and c.key_id == CredentialCipher(key).key_id
    with pytest.raises(ConfigError, match="cannot read"):
        load_cipher({"INTEGRATION_ENCRYPTION_KEY_FILE": str(tmp_path / "missing")})


def test_generated_key_file_is_0600_reused_and_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    first = load_cipher({"PROTOMESH_STATE_DIR": str(tmp_path)})
    path = tmp_path / "integration" / "encryption.key"
    assert first.source == "generated file"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_cipher({"PROTOMESH_STATE_DIR": str(tmp_path)})
    assert second.key_id == first.key_id, "the second replica reads the same key"
    assert str(path) in caplog.text
    assert path.read_text().strip() not in caplog.text
    assert path.read_text().strip() not in repr(first)
    sealed = first.seal(SECRET, "x")
    assert second.open(sealed, "x") == SECRET
