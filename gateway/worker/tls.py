"""TLS termination in a worker: one prepared SSLContext per certificate, picked by SNI.

The master ships `ssls` objects with decrypted keys (gateway.master.certstore). When the table
is built, each becomes an SSLContext (all its pairs loaded: RSA and ECDSA may share an SNI,
OpenSSL picks by the client's algorithms) and lands in an index: exact names first, then
`*.` wildcards by their suffix. The listener's context has an SNI callback that swaps in the
chosen context at handshake time, so a new or rotated certificate serves from the next
handshake on, with no restart. No SNI: `apisix.ssl.fallback_sni`; an unknown name with no
fallback fails the handshake (unrecognized_name), as APISIX does.

Python's ssl loads certificates only from files; keys are handed to OpenSSL through an
anonymous memory file (memfd), so no private key is ever written to a filesystem.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.core.log import log

PROTOCOLS = {"TLSv1.1": ssl.TLSVersion.TLSv1_1, "TLSv1.2": ssl.TLSVersion.TLSv1_2,
             "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def _memfile(data: str) -> int:
    fd = os.memfd_create("gateway-cert", os.MFD_CLOEXEC)
    os.write(fd, data.encode())
    return fd


def _load_pair(ctx: ssl.SSLContext, cert: str, key: str) -> None:
    cert_fd, key_fd = _memfile(cert), _memfile(key)
    try:
        ctx.load_cert_chain("/proc/self/fd/%d" % cert_fd, "/proc/self/fd/%d" % key_fd)
    finally:
        os.close(cert_fd)
        os.close(key_fd)


def _protocol_range(names: Iterable[str]) -> tuple[ssl.TLSVersion, ssl.TLSVersion] | None:
    versions = sorted(PROTOCOLS[n] for n in names if n in PROTOCOLS)
    return (versions[0], versions[-1]) if versions else None


def base_settings(conf: Mapping[str, Any]) -> dict[str, Any]:
    """What every server context takes from `apisix.ssl`."""
    ssl_conf = (conf.get("apisix") or {}).get("ssl") or {}
    protocols = str(ssl_conf.get("ssl_protocols") or "TLSv1.2 TLSv1.3").split()
    return {"protocols": protocols, "ciphers": ssl_conf.get("ssl_ciphers"),
            "tickets": bool(ssl_conf.get("ssl_session_tickets")),
            "fallback_sni": (ssl_conf.get("fallback_sni") or "").lower() or None}


def server_context(settings: Mapping[str, Any], protocols: Iterable[str] | None = None
                   ) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    span = _protocol_range(protocols or settings["protocols"])
    if span:
        ctx.minimum_version, ctx.maximum_version = span
    if settings.get("ciphers"):
        try:
            ctx.set_ciphers(settings["ciphers"])
        except ssl.SSLError:
            log.error("apisix.ssl.ssl_ciphers: no usable cipher in %r; using defaults",
                      settings["ciphers"])
    if not settings.get("tickets"):
        ctx.options |= ssl.OP_NO_TICKET
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class Certificate:
    """One `ssls` object ready for handshakes."""

    __slots__ = ("id", "snis", "context", "client", "skip_mtls")

    def __init__(self, obj: Mapping[str, Any], settings: Mapping[str, Any]):
        self.id = str(obj.get("id"))
        self.snis = list(obj.get("snis") or ())
        ctx = server_context(settings, obj.get("ssl_protocols"))
        for cert, key in obj.get("pairs") or ():
            _load_pair(ctx, cert, key)
        self.client = obj.get("client") or None
        self.skip_mtls = []
        if self.client:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cadata=self.client["ca"])
            import re
            self.skip_mtls = [re.compile(p) for p in self.client.get("skip_mtls_uri_regex") or ()]
            if self.skip_mtls:
                # some URIs go without a client certificate: ask for one, check it per request
                ctx.verify_mode = ssl.CERT_OPTIONAL
        self.context = ctx


class CertIndex:
    """SNI → Certificate: exact names, then the longest matching `*.` wildcard."""

    def __init__(self) -> None:
        self.exact: dict[str, Certificate] = {}
        self.wildcard: dict[str, Certificate] = {}      # ".test.com" → cert

    @classmethod
    def build(cls, objects: Mapping[str, Any], conf: Mapping[str, Any]) -> CertIndex:
        index = cls()
        settings = base_settings(conf)
        for key in sorted(k for k in objects if k.startswith("/apisix/ssls/")):
            obj = objects[key]
            if not isinstance(obj, dict) or obj.get("type", "server") != "server" \
                    or obj.get("status", 1) == 0 or not obj.get("pairs"):
                continue
            try:
                cert = Certificate(obj, settings)
            except (ssl.SSLError, OSError, ValueError) as exc:
                log.error("ssl %s skipped: %s", key, exc)
                continue
            for sni in cert.snis:
                if sni.startswith("*."):
                    index.wildcard.setdefault(sni[1:], cert)
                else:
                    index.exact.setdefault(sni, cert)
        return index

    def __len__(self) -> int:
        return len(self.exact) + len(self.wildcard)

    def find(self, name: str | None) -> Certificate | None:
        if not name:
            return None
        name = name.lower().rstrip(".")
        found = self.exact.get(name)
        if found is not None:
            return found
        dot = name.find(".")
        while dot != -1:
            found = self.wildcard.get(name[dot:])
            if found is not None:
                return found
            dot = name.find(".", dot + 1)
        return None


def listener_context(conf: Mapping[str, Any], current_index) -> ssl.SSLContext:
    """The context of a TLS listener: its SNI callback picks a certificate from
    `current_index()` (the table being served) at each handshake."""
    settings = base_settings(conf)
    ctx = server_context(settings)
    fallback = settings["fallback_sni"]

    def pick(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext):
        index: CertIndex = current_index()
        cert = index.find(server_name) or (index.find(fallback) if fallback else None)
        if cert is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sslobj.context = cert.context
        # which certificate admitted the connection: its SNIs bound the Host of requests
        sslobj.gateway_cert = cert  # type: ignore[attr-defined]
        return None

    ctx.sni_callback = pick
    return ctx
