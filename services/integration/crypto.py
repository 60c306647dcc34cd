"""Credentials at rest: AES-256-GCM with a key from the environment, a key file, or a generated key file.

Each encryption draws a fresh random 96-bit nonce and binds the ciphertext to its integration's id
(associated data), so a ciphertext copied onto another row does not decrypt. The key id stored
beside each ciphertext is a fingerprint of the key (not the key), so a replica with another key
fails clearly instead of producing garbage. Neither the key nor any plaintext is ever logged.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chassis.config import ConfigError
from chassis.errors import FailedPrecondition

logger = logging.getLogger(__name__)

KEY_ENV = "INTEGRATION_ENCRYPTION_KEY"
"""Base64 of 32 random bytes."""
KEY_FILE_ENV = "INTEGRATION_ENCRYPTION_KEY_FILE"
"""A file holding the base64 key (or the 32 raw bytes)."""
STATE_DIR_ENV = "PROTOMESH_STATE_DIR"
GENERATED_KEY_PATH = Path("integration") / "encryption.key"
"""Under the mesh's state dir: where a key is generated when no key is configured."""
NONCE_BYTES = 12


class DecryptionError(FailedPrecondition):
    """Stored credentials cannot be decrypted with this replica's key (wrong key, or tampered data)."""


@dataclass(frozen=True)
class Sealed:
    """Encrypted credentials as stored: ciphertext (with its GCM tag), nonce and key id."""

    ciphertext: bytes
    nonce: bytes
    key_id: str


def _decode_key(raw: bytes, where: str, *, allow_raw: bool = False) -> bytes:
    # A base64 key is 44 characters, so a file of exactly 32 bytes can only be a raw key.
    if allow_raw and len(raw) == 32:
        return raw
    text = raw.strip()
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where} is not base64 (want 32 random bytes, base64-encoded)") from None
    if len(key) != 32:
        raise ConfigError(f"{where} decodes to {len(key)} bytes; AES-256 needs 32")
    return key


def key_id(key: bytes) -> str:
    """A short public fingerprint of a key (a hash, so it reveals nothing of the key)."""
    return hashlib.sha256(b"protomesh-integration-key:" + key).hexdigest()[:16]


class CredentialCipher:
    """Encrypts and decrypts credential maps with one AES-256-GCM key."""

    def __init__(self, key: bytes, source: str = "env") -> None:
        if len(key) != 32:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        self._aead = AESGCM(key)
        self.key_id = key_id(key)
        self.source = source

    def __repr__(self) -> str:
        return f"CredentialCipher(key_id={self.key_id!r}, source={self.source!r})"

    def seal(self, credentials: Mapping[str, str], bound_to: str) -> Sealed | None:
        """Encrypt a credential map for the integration `bound_to`; None for no credentials."""
        if not credentials:
            return None
        plaintext = json.dumps(dict(sorted(credentials.items())), separators=(",", ":")).encode()
        nonce = os.urandom(NONCE_BYTES)
        return Sealed(self._aead.encrypt(nonce, plaintext, bound_to.encode()), nonce, self.key_id)

    def open(self, sealed: Sealed | None, bound_to: str) -> dict[str, str]:
        """Decrypt stored credentials; DecryptionError (no detail about the data) if they cannot be."""
        if sealed is None:
            return {}
        if sealed.key_id != self.key_id:
            raise DecryptionError(f"the credentials were encrypted with key {sealed.key_id}, but this replica has "
                                  f"key {self.key_id}; set {KEY_ENV} or {KEY_FILE_ENV} to the key they were "
                                  "stored with, or store new credentials")
        try:
            plaintext = self._aead.decrypt(sealed.nonce, sealed.ciphertext, bound_to.encode())
        except InvalidTag:
            raise DecryptionError("the stored credentials do not decrypt with this replica's key (the data or "
                                  "its nonce were altered, or they belong to another integration)") from None
        return json.loads(plaintext)


def _generated_key_file(state_dir: Path) -> tuple[Path, bool]:
    """The generated key file under state_dir, created (0600, atomically) if missing; (path, created)."""
    path = state_dir / GENERATED_KEY_PATH
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        return path, False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(base64.b64encode(AESGCM.generate_key(bit_length=256)) + b"\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            # link() fails if another replica won the race: then its key is the key.
            os.link(tmp, path)
            created = True
        except FileExistsError:
            created = False
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path, created


def load_cipher(env: Mapping[str, str] | None = None, default_state_dir: Path | None = None) -> CredentialCipher:
    """The cipher from INTEGRATION_ENCRYPTION_KEY, INTEGRATION_ENCRYPTION_KEY_FILE, or a generated key file."""
    env = os.environ if env is None else env
    if env.get(KEY_ENV, "").strip():
        return CredentialCipher(_decode_key(env[KEY_ENV].encode(), KEY_ENV), source="env")
    file_name = env.get(KEY_FILE_ENV, "").strip()
    if file_name:
        path = Path(file_name)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{KEY_FILE_ENV}={file_name}: cannot read it ({exc.strerror})") from None
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning("the encryption key file can be read by other users; chmod 600 it",
                           extra={"key_file": str(path)})
        return CredentialCipher(_decode_key(raw, f"{KEY_FILE_ENV}={file_name}", allow_raw=True), source="file")
    state_dir = Path(env.get(STATE_DIR_ENV, "").strip() or default_state_dir or ".protomesh")
    path, created = _generated_key_file(state_dir)
    cipher = CredentialCipher(_decode_key(path.read_bytes(), str(path)), source="generated file")
    logger.warning("no %s or %s set: %s the key file %s (mode 0600); keep it, or the stored credentials "
                   "cannot be decrypted", KEY_ENV, KEY_FILE_ENV, "generated" if created else "using",
                   path, extra={"key_file": str(path), "key_id": cipher.key_id})
    return cipher
