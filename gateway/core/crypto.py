"""Encryption at rest of secrets in config objects, compatible with APISIX's.

APISIX encrypts SSL private keys (always) and the `encrypt_fields` plugins declare (when
`apisix.data_encryption.enable_encrypt_fields` is on) with AES-128-CBC, the key being one of
`apisix.data_encryption.keyring` (16 characters) and the IV the same 16 bytes, stored as
base64. The first keyring entry encrypts; every entry is tried to decrypt, so keys can be
rotated by prepending a new one. Matching the scheme byte for byte keeps etcd data portable
between APISIX and us in both directions.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_BLOCK = 128


class Keyring:
    def __init__(self, keys: Sequence[str] | None):
        self.keys = [k.encode() for k in keys or () if isinstance(k, str) and len(k) == 16]

    @classmethod
    def from_conf(cls, conf: dict[str, Any]) -> Keyring:
        enc = (conf.get("apisix") or {}).get("data_encryption") or {}
        return cls(enc.get("keyring"))

    def encrypt(self, text: str) -> str:
        if not self.keys:
            return text
        key = self.keys[0]
        padder = padding.PKCS7(_BLOCK).padder()
        data = padder.update(text.encode()) + padder.finalize()
        enc = Cipher(algorithms.AES(key), modes.CBC(key)).encryptor()
        return base64.b64encode(enc.update(data) + enc.finalize()).decode()

    def decrypt(self, text: str) -> str:
        """The plain text; `text` itself when no key decrypts it (stored unencrypted)."""
        if not self.keys or not isinstance(text, str):
            return text
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return text
        if not raw or len(raw) % 16:
            return text
        for key in self.keys:
            dec = Cipher(algorithms.AES(key), modes.CBC(key)).decryptor()
            try:
                data = dec.update(raw) + dec.finalize()
                unpadder = padding.PKCS7(_BLOCK).unpadder()
                plain = unpadder.update(data) + unpadder.finalize()
                return plain.decode()
            except (ValueError, UnicodeDecodeError):
                continue
        return text
