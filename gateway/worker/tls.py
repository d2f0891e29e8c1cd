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

import ctypes
import os
import re
import ssl
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.core.log import log

PROTOCOLS = {"TLSv1.1": ssl.TLSVersion.TLSv1_1, "TLSv1.2": ssl.TLSVersion.TLSv1_2,
             "TLSv1.3": ssl.TLSVersion.TLSv1_3}


# --- per-connection client verification
# OpenSSL keeps the verify mode of the connection's first context when the SNI callback
# switches contexts (nginx calls SSL_set_verify itself in its SNI handler), and Python has no
# per-connection setter. So we call libssl's SSL_set_verify / SSL_set_verify_depth on the
# connection's SSL*, read from the _ssl object (CPython layout: PyObject_HEAD, the socket
# weakref, then SSL *), after checking at import that the pointer found is the right one.
_VERIFY_PEER, _VERIFY_FAIL_IF_NO_PEER_CERT = 1, 2
_ssl_lib: Any = None


def _ssl_ptr(sslobj: Any) -> int | None:
    inner = getattr(sslobj, "_sslobj", None) or sslobj
    return ctypes.c_void_p.from_address(id(inner) + 2 * ctypes.sizeof(ctypes.c_void_p)
                                        + ctypes.sizeof(ctypes.c_void_p)).value


def _load_verify_setter() -> Any:
    try:
        import _ssl
        lib = ctypes.CDLL(_ssl.__file__)        # resolves libssl's symbols it links to
        lib.SSL_set_verify.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
        lib.SSL_set_verify.restype = None
        lib.SSL_set_verify_depth.argtypes = (ctypes.c_void_p, ctypes.c_int)
        lib.SSL_set_verify_depth.restype = None
        lib.SSL_get_verify_mode.argtypes = (ctypes.c_void_p,)
        lib.SSL_get_verify_mode.restype = ctypes.c_int
        for mode in (ssl.CERT_NONE, ssl.CERT_REQUIRED):   # is _ssl_ptr right here?
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.verify_mode = mode
            probe = ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=True)
            want = 0 if mode == ssl.CERT_NONE else _VERIFY_PEER | _VERIFY_FAIL_IF_NO_PEER_CERT
            if lib.SSL_get_verify_mode(_ssl_ptr(probe)) != want:
                raise RuntimeError("unexpected _ssl object layout")
        return lib
    except Exception as exc:  # noqa: BLE001
        log.error("client certificate verification (ssls.client) is unavailable: %s", exc)
        return None


def set_client_verify(sslobj: Any, required: bool, depth: int | None) -> bool:
    """Ask this connection for a client certificate (``required``: fail without one)."""
    global _ssl_lib
    if _ssl_lib is None:
        _ssl_lib = _load_verify_setter() or False
    if not _ssl_lib:
        return False
    ptr = _ssl_ptr(sslobj)
    _ssl_lib.SSL_set_verify(ptr, _VERIFY_PEER | (_VERIFY_FAIL_IF_NO_PEER_CERT if required
                                                 else 0), None)
    if depth is not None:
        _ssl_lib.SSL_set_verify_depth(ptr, depth)
    return True


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
        ctx.num_tickets = 0         # TLS 1.3 sends its tickets unasked otherwise
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class Certificate:
    """One `ssls` object ready for handshakes."""

    __slots__ = ("id", "snis", "context", "client", "skip_mtls", "protocols", "verify")

    def __init__(self, obj: Mapping[str, Any], settings: Mapping[str, Any]):
        self.id = str(obj.get("id"))
        self.snis = list(obj.get("snis") or ())
        ctx = server_context(settings, obj.get("ssl_protocols"))
        #: the object's own ssl_protocols (checked after the handshake: OpenSSL keeps the
        #: listener's version range when the SNI callback switches contexts)
        self.protocols = frozenset(obj["ssl_protocols"]) if obj.get("ssl_protocols") else None
        for cert, key in obj.get("pairs") or ():
            _load_pair(ctx, cert, key)
        self.client = obj.get("client") or None
        self.skip_mtls = []
        #: (certificate required, depth) for connections this certificate admits
        self.verify: tuple[bool, int | None] | None = None
        if self.client:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cadata=self.client["ca"])
            self.skip_mtls = [re.compile(p) for p in self.client.get("skip_mtls_uri_regex") or ()]
            if self.skip_mtls:
                # some URIs go without a client certificate: ask for one, check it per request
                ctx.verify_mode = ssl.CERT_OPTIONAL
            depth = self.client.get("depth", 1)
            self.verify = (not self.skip_mtls, depth if isinstance(depth, int) else None)
        self.context = ctx


#: ssls key → (identity, Certificate) of the last build, reused while unchanged
_CONTEXTS: dict[str, tuple[Any, Certificate]] = {}


def _identity(obj: Mapping[str, Any], settings: Mapping[str, Any]) -> Any:
    """What a Certificate is made of (strings hash once: cheap to compare per build)."""
    client = obj.get("client") or {}
    return (tuple(tuple(p) for p in obj.get("pairs") or ()), tuple(obj.get("snis") or ()),
            tuple(obj.get("ssl_protocols") or ()), client.get("ca"), client.get("depth"),
            tuple(client.get("skip_mtls_uri_regex") or ()), tuple(sorted(
                (k, str(v)) for k, v in settings.items())))


class CertIndex:
    """SNI → Certificate: exact names, then the longest matching `*.` wildcard."""

    def __init__(self) -> None:
        self.exact: dict[str, Certificate] = {}
        self.wildcard: dict[str, Certificate] = {}      # ".test.com" → cert

    @classmethod
    def build(cls, objects: Mapping[str, Any], conf: Mapping[str, Any]) -> CertIndex:
        index = cls()
        settings = base_settings(conf)
        made: dict[str, tuple[Any, Certificate]] = {}
        for key in sorted(k for k in objects if k.startswith("/apisix/ssls/")):
            obj = objects[key]
            if not isinstance(obj, dict) or obj.get("type", "server") != "server" \
                    or obj.get("status", 1) == 0 or not obj.get("pairs"):
                continue
            # every config change rebuilds the table: an unchanged certificate keeps its
            # context (loading one costs about a millisecond; thousands would stall)
            ident = _identity(obj, settings)
            cached = _CONTEXTS.get(key)
            if cached is not None and cached[0] == ident:
                cert = cached[1]
            else:
                try:
                    cert = Certificate(obj, settings)
                except (ssl.SSLError, OSError, ValueError) as exc:
                    log.error("ssl %s skipped: %s", key, getattr(exc, "reason", None)
                              or type(exc).__name__)
                    continue
            made[key] = (ident, cert)
            for sni in cert.snis:
                if sni.startswith("*."):
                    index.wildcard.setdefault(sni[1:], cert)
                else:
                    index.exact.setdefault(sni, cert)
        _CONTEXTS.clear()
        _CONTEXTS.update(made)
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
        if cert.verify is not None and not set_client_verify(sslobj, *cert.verify):
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR   # never admit mTLS unverified
        # which certificate admitted the connection: its SNIs bound the Host of requests
        sslobj.gateway_cert = cert  # type: ignore[attr-defined]
        sslobj.gateway_sni = server_name  # type: ignore[attr-defined]
        return None

    ctx.sni_callback = pick
    return ctx


# ---------------------------------------------------------------------- upstreams
class UpstreamTLS:
    """How a worker speaks TLS to an upstream (``scheme: https``): the client context
    (verification, client certificate) and the pool key part that keeps these connections
    apart from plain ones and from other TLS settings to the same address."""

    __slots__ = ("context", "key")

    def __init__(self, context: ssl.SSLContext, key: tuple):
        self.context = context
        self.key = key


class UpstreamTLSFactory:
    """Contexts for `scheme: https` upstreams of one table build, shared by equal settings.

    Verification follows nginx/APISIX: off unless the upstream's ``tls.verify`` is true
    (then against ``apisix.ssl.ssl_trusted_certificate``: "system" or a CA file, with the
    host name checked against the SNI). The client certificate comes from
    ``tls.client_cert``/``client_key`` or from the `ssls` object ``tls.client_cert_id``
    (``type: client``; its key decrypted by the master's certificate store)."""

    def __init__(self, objects: Mapping[str, Any], conf: Mapping[str, Any]):
        self.objects = objects
        ssl_conf = (conf.get("apisix") or {}).get("ssl") or {}
        self.trusted = ssl_conf.get("ssl_trusted_certificate") or "system"
        self.keyring = None
        try:
            from gateway.core.crypto import Keyring
            self.keyring = Keyring.from_conf(dict(conf))
        except Exception:  # noqa: BLE001 - no keyring: keys are used as stored
            pass
        self.cache: dict[tuple, UpstreamTLS] = {}

    def get(self, key: str, up: Mapping[str, Any]) -> UpstreamTLS | None:
        """The TLS settings of upstream ``up`` (its object ``key``); None (and a logged
        reason) when they cannot be used: its requests then get 502, as APISIX's."""
        tls = up.get("tls") if isinstance(up.get("tls"), Mapping) else {}
        verify = bool(tls.get("verify"))
        pair = None
        cert_id = tls.get("client_cert_id")
        if cert_id is not None:
            obj = self.objects.get("/apisix/ssls/%s" % cert_id)
            if not isinstance(obj, Mapping):
                log.error("failed to get ssl cert: ssl id [%s] not exits", cert_id)
                return None
            if obj.get("type") != "client" or not obj.get("pairs"):
                log.error("failed to get ssl cert: ssl type should be 'client'")
                return None
            pair = tuple(obj["pairs"][0])
        elif tls.get("client_cert") and tls.get("client_key"):
            client_key = tls["client_key"]
            if self.keyring is not None:
                client_key = self.keyring.decrypt(client_key)
            pair = (tls["client_cert"], client_key)
        ident = (verify, hash(pair) if pair else None)
        found = self.cache.get(ident)
        if found is not None:
            return found
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if verify:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.check_hostname = True
            try:
                if self.trusted == "system":
                    ctx.load_default_certs()
                else:
                    ctx.load_verify_locations(cafile=str(self.trusted))
            except (OSError, ssl.SSLError) as exc:
                log.error("upstream %s: cannot load ssl_trusted_certificate %s: %s",
                          key, self.trusted, exc)
                return None
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        if pair is not None:
            try:
                _load_pair(ctx, pair[0], pair[1])
            except (ssl.SSLError, OSError, ValueError) as exc:
                log.error("upstream %s: unusable client certificate: %s", key,
                          getattr(exc, "reason", None) or type(exc).__name__)
                return None
        found = self.cache[ident] = UpstreamTLS(ctx, ("tls",) + ident)
        return found


# ---------------------------------------------------------------------- Admin API
def admin_context(admin: Mapping[str, Any], prefix: str) -> ssl.SSLContext | None:
    """`deployment.admin.https_admin`: the Admin API listener's context from
    `admin_api_mtls` (PEM file paths, relative to the prefix); with `admin_ssl_ca_cert`,
    clients must present a certificate from that CA (APISIX's admin mTLS). None when
    https_admin is off. Raises ValueError for unusable settings (the worker cannot boot)."""
    if not admin.get("https_admin"):
        return None
    mtls = admin.get("admin_api_mtls") or {}
    cert, key = mtls.get("admin_ssl_cert"), mtls.get("admin_ssl_cert_key")
    if not cert or not key:
        raise ValueError("deployment.admin.https_admin needs admin_api_mtls.admin_ssl_cert "
                         "and admin_ssl_cert_key")

    def path(p: str) -> str:
        return p if os.path.isabs(p) else os.path.join(prefix, p)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(path(cert), path(key))
        if mtls.get("admin_ssl_ca_cert"):
            ctx.load_verify_locations(path(mtls["admin_ssl_ca_cert"]))
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ValueError("deployment.admin.admin_api_mtls: %s" % (
            getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc)) from None
    return ctx
