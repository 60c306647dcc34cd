"""Encryption at rest for every service: AES-256-GCM, the key from the environment, a key file or a generated file.

A service seals a value (bytes, or a str -> str map) bound to the id of the row that stores it:
each encryption draws a fresh random 96-bit nonce and uses the id as associated data, so a
ciphertext copied onto another row does not decrypt. The key id stored beside each ciphertext is a
fingerprint of the key (not the key), so a replica with another key fails clearly instead of
producing garbage. Neither the key nor any plaintext is ever logged.

Key of a service (first found wins):

1. ``<SERVICE>_ENCRYPTION_KEY`` (base64 of 32 bytes), or ``<SERVICE>_ENCRYPTION_KEY_FILE``;
2. ``PROTOMESH_ENCRYPTION_KEY``, or ``PROTOMESH_ENCRYPTION_KEY_FILE`` (one key for the whole mesh);
3. ``<PROTOMESH_STATE_DIR>/<service>/encryption.key``, generated (0600) by the first replica.
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
from typing import Any

from chassis.config import ConfigError
from chassis.errors import FailedPrecondition

logger = logging.getLogger(__name__)

MESH_PREFIX = "PROTOMESH"
"""The fallback variables are PROTOMESH_ENCRYPTION_KEY and PROTOMESH_ENCRYPTION_KEY_FILE."""
STATE_DIR_ENV = "PROTOMESH_STATE_DIR"
KEY_FILE_NAME = "encryption.key"
"""Under <state dir>/<service>/: where a key is generated when none is configured."""
NONCE_BYTES = 12
KEY_BYTES = 32
_FINGERPRINT_CONTEXT = b"protomesh-integration-key:"
"""Hashed in front of the key for its id. The name is historical (the integration service had the first
cipher); it stays so the key ids already stored beside credentials keep matching their key."""


class DecryptionError(FailedPrecondition):
    """Stored data cannot be decrypted with this replica's key (wrong key, or tampered data)."""


@dataclass(frozen=True)
class Sealed:
    """An encrypted value as stored: ciphertext (with its GCM tag), nonce and key id."""

    ciphertext: bytes
    nonce: bytes
    key_id: str

    def __repr__(self) -> str:
        return f"Sealed(key_id={self.key_id!r}, {len(self.ciphertext)} bytes)"


def env_names(service: str) -> tuple[str, str]:
    """(key variable, key file variable) of a service, e.g. INTEGRATION_ENCRYPTION_KEY(_FILE)."""
    prefix = service.upper().replace("-", "_")
    return f"{prefix}_ENCRYPTION_KEY", f"{prefix}_ENCRYPTION_KEY_FILE"


def key_id(key: bytes) -> str:
    """A short public fingerprint of a key (a hash, so it reveals nothing of the key)."""
    return hashlib.sha256(_FINGERPRINT_CONTEXT + key).hexdigest()[:16]


class Cipher:
    """Seals and opens values with one AES-256-GCM key."""

    def __init__(self, key: bytes, source: str = "env", *, key_env: tuple[str, ...] = ()) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        self._key = key
        self._aead_instance: Any = None
        self.key_id = key_id(key)
        self.source = source
        """How the key was found: "env", "file" or "generated file"."""
        self._key_env = key_env

    def __repr__(self) -> str:
        return f"Cipher(key_id={self.key_id!r}, source={self.source!r})"

    @property
    def _aead(self) -> Any:
        # `cryptography` is imported on first use: it adds ~7 MB to every replica that only might need it.
        if self._aead_instance is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._aead_instance = AESGCM(self._key)
        return self._aead_instance

    def seal_bytes(self, plaintext: bytes, bound_to: str) -> Sealed:
        """Encrypt bytes for the row `bound_to` under a fresh nonce."""
        nonce = os.urandom(NONCE_BYTES)
        return Sealed(self._aead.encrypt(nonce, plaintext, bound_to.encode()), nonce, self.key_id)

    def open_bytes(self, sealed: Sealed, bound_to: str, *, what: str = "stored data") -> bytes:
        """Decrypt what seal_bytes sealed for `bound_to`; DecryptionError (naming `what`, nothing of the data) if
        it cannot be."""
        if sealed.key_id != self.key_id:
            where = f"set {' or '.join(self._key_env)} to that key, or " if self._key_env else ""
            raise DecryptionError(f"the {what} (encrypted with key {sealed.key_id}) cannot be decrypted: this replica "
                                  f"has key {self.key_id}; {where}store the {what} again")
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead.decrypt(sealed.nonce, sealed.ciphertext, bound_to.encode())
        except InvalidTag:
            raise DecryptionError(f"the ciphertext and nonce of the {what} do not decrypt with this replica's key "
                                  "(they were altered, or belong to another row)") from None

    def seal(self, values: Mapping[str, str], bound_to: str) -> Sealed | None:
        """Encrypt a str -> str map for the row `bound_to`; None for an empty map."""
        if not values:
            return None
        return self.seal_bytes(json.dumps(dict(sorted(values.items())), separators=(",", ":")).encode(), bound_to)

    def open(self, sealed: Sealed | None, bound_to: str, *, what: str = "stored data") -> dict[str, str]:
        """Decrypt a map sealed by seal (None gives {}); DecryptionError if it cannot be."""
        if sealed is None:
            return {}
        return json.loads(self.open_bytes(sealed, bound_to, what=what))


def _decode_key(raw: bytes, where: str, *, allow_raw: bool = False) -> bytes:
    # A base64 key is 44 characters, so a file of exactly 32 bytes can only be a raw key.
    if allow_raw and len(raw) == KEY_BYTES:
        return raw
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where} is not base64 (want 32 random bytes, base64-encoded)") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{where} decodes to {len(key)} bytes; AES-256 needs 32")
    return key


def _read_key_file(variable: str, file_name: str) -> bytes:
    path = Path(file_name)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{variable}={file_name}: cannot read it ({exc.strerror})") from None
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("the encryption key file can be read by other users; chmod 600 it",
                       extra={"key_file": str(path)})
    return _decode_key(raw, f"{variable}={file_name}", allow_raw=True)


def generated_key_file(state_dir: Path, service: str) -> tuple[Path, bool]:
    """<state_dir>/<service>/encryption.key, created (0600, atomically) if missing; (path, created).

    Replicas starting together race safely: each writes a complete key to its own temporary file
    and link()s it into place; link() fails for all but the first, and they then read the winner's key.
    """
    path = state_dir / service / KEY_FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        return path, False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(base64.b64encode(os.urandom(KEY_BYTES)) + b"\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
            created = True
        except FileExistsError:
            created = False
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path, created


def load_cipher(service: str, env: Mapping[str, str] | None = None,
                default_state_dir: Path | None = None) -> Cipher:
    """The service's cipher: its own key variables, then the mesh's, then a generated key file."""
    env = os.environ if env is None else env
    own, mesh = env_names(service), env_names(MESH_PREFIX)
    names = (*own, *mesh)
    for key_var, file_var in (own, mesh):
        if env.get(key_var, "").strip():
            return Cipher(_decode_key(env[key_var].encode(), key_var), source="env", key_env=names)
        if env.get(file_var, "").strip():
            return Cipher(_read_key_file(file_var, env[file_var].strip()), source="file", key_env=names)
    state_dir = Path(env.get(STATE_DIR_ENV, "").strip() or default_state_dir or ".protomesh")
    path, created = generated_key_file(state_dir, service)
    cipher = Cipher(_decode_key(path.read_bytes(), str(path)), source="generated file", key_env=names)
    logger.warning("no %s set: %s the key file %s (mode 0600); keep it, or the data encrypted with it cannot be "
                   "decrypted", " / ".join(names), "generated" if created else "using", path,
                   extra={"key_file": str(path), "key_id": cipher.key_id})
    return cipher
