"""Links kept for reminders, encrypted (AES-256-GCM) with a key file: the database alone reveals none."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from recording.durable import fsync_dir

KEY_BYTES = 32
NONCE_BYTES = 12


class LinkVaultError(Exception):
    """A kept link cannot be read back (another key, or the stored value was altered)."""


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``; a new random key (readable by the server's user only) if there is none."""
    if path.exists():
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise LinkVaultError(f"{path} is not a {KEY_BYTES}-byte key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)
    return key


class LinkVault:
    """Seals a link to the invitation it belongs to, and opens it again when a message is sent."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def from_file(cls, path: Path) -> LinkVault:
        """The vault with the key in ``path`` (created on first use)."""
        return cls(load_or_create_key(path))

    def seal(self, link: str, invitation_id: str) -> str:
        """``link`` encrypted and bound to ``invitation_id`` (moved to another row, it will not open)."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, link.encode(), invitation_id.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, invitation_id: str) -> str:
        """The link sealed for ``invitation_id``, or :class:`LinkVaultError`."""
        try:
            raw = base64.urlsafe_b64decode(sealed.encode("ascii"))
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], invitation_id.encode()).decode()
        except (ValueError, InvalidTag) as exc:
            raise LinkVaultError("a kept link cannot be decrypted with this server's link key") from exc
