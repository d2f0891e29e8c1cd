"""The master's certificate store: `ssls` objects made ready for the workers' TLS.

Certificates belong to the master (DESIGN.md): it takes every `ssls` object from the config
source, decrypts its private keys (APISIX's keyring scheme, gateway.core.crypto), checks each
certificate/key pair, and hands the snapshot a prepared object instead of the stored one:

  {"id", "type", "snis": [...], "pairs": [[cert, key], ...], "client": {...},
   "ssl_protocols": [...], "status"}

An object whose pair does not parse or match is left out with one error line naming its key,
so a worker never fails a handshake on it. Decrypted keys travel only to the workers, over
the master's local ZeroMQ sockets; they are never written to disk or to a log.
"""

from __future__ import annotations

from typing import Any

from gateway.core import certs
from gateway.core.crypto import Keyring
from gateway.core.log import log

SSL_PREFIX = "/apisix/ssls/"


class CertStore:
    def __init__(self, conf: dict[str, Any]):
        self.keyring = Keyring.from_conf(conf)

    def prepare(self, key: str, value: Any) -> Any:
        """The object workers get for `key` (unchanged for keys that are not ssls)."""
        if not key.startswith(SSL_PREFIX) or not isinstance(value, dict):
            return value
        keys = [self.keyring.decrypt(value.get("key") or "")]
        keys += [self.keyring.decrypt(k) for k in value.get("keys") or ()]
        cert_list = [value.get("cert") or ""] + list(value.get("certs") or ())
        pairs = []
        for cert, pkey in zip(cert_list, keys):
            if certs.is_reference(cert) or certs.is_reference(pkey):
                log.error("ssl %s: secret references in certificates are not supported yet; "
                          "skipped", key)
                return None
            problem = certs.check_pair(cert, pkey)
            if problem:
                log.error("ssl %s skipped: %s", key, problem)
                return None
            pairs.append([cert, pkey])
        snis = value.get("snis") or ([value["sni"]] if value.get("sni") else [])
        return {"id": value.get("id"), "type": value.get("type") or "server",
                "snis": [s.lower() for s in snis], "pairs": pairs,
                "client": value.get("client"), "ssl_protocols": value.get("ssl_protocols"),
                "status": value.get("status", 1)}

    def prepare_all(self, objects: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in objects.items():
            value = self.prepare(key, value)
            if value is not None:
                out[key] = value
        return out

    def prepare_changes(self, changes: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        # a put whose certificate is unusable becomes a delete: workers drop the old one too
        return [(key, None if value is None else self.prepare(key, value))
                for key, value in changes]
