"""jwt-auth: the consumer is the one whose ``key`` a signed JWT names in its ``key`` claim
(APISIX ``jwt-auth``, priority 2510, rewrite phase).

The token comes from the ``authorization`` header (an optional ``Bearer ``/``bearer ``
prefix), else the ``jwt`` query argument, else the ``jwt`` cookie. It is checked in
APISIX's order: parsed (401 ``JWT token invalid``), the key claim (``missing user key in
JWT token``), the consumer (``Invalid user key in JWT token``), then the token's ``alg``
must equal the consumer's ``algorithm``, the signature must verify and the claims hold
(all three: ``failed to verify jwt``). ``WWW-Authenticate: Bearer realm="jwt"``.

Security: signatures are verified with python-jose (HS*, RS*, ES*; its cryptography
backend) and the cryptography package (PS*, EdDSA), always with the one algorithm the
consumer is configured with, so ``alg: none`` and algorithm-confusion tokens (an HS256 MAC
keyed with an RSA public key) are refused. Keys are parsed once, when the table is built.

Claims (``claims_to_verify`` unset or empty): ``exp`` and ``nbf`` are checked when present;
listed claims are required. ``lifetime_grace_period`` (consumer) is the leeway.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
import re
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jose import jwk, jws
from jose.exceptions import JOSEError

from gateway.core.log import log as _log
from gateway.worker import consumers

NAME = "jwt-auth"
PRIORITY = 2510
VERSION = 0.1
TYPE = "auth"
CONSUMER_KEY = "key"
ENCRYPT_FIELDS = ("secret",)

HS_ALGORITHMS = ("HS256", "HS384", "HS512")
KEY_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384",
                  "PS512", "EdDSA")

SCHEMA = {
    "type": "object",
    "properties": {
        "header": {"type": "string", "default": "authorization"},
        "query": {"type": "string", "default": "jwt"},
        "cookie": {"type": "string", "default": "jwt"},
        "hide_credentials": {"type": "boolean", "default": False},
        "key_claim_name": {"type": "string", "default": "key", "minLength": 1},
        "store_in_ctx": {"type": "boolean", "default": False},
        "realm": consumers.realm_schema("jwt"),
        "anonymous_consumer": consumers.ANONYMOUS_CONSUMER_SCHEMA,
        "claims_to_verify": {
            "type": "array",
            "items": {"type": "string", "enum": ["exp", "nbf"]},
            "uniqueItems": True,
        },
    },
}

CONSUMER_SCHEMA = {
    "type": "object",
    "properties": {
        "key": {"type": "string", "minLength": 1},
        "secret": {"type": "string", "minLength": 1},
        "algorithm": {"type": "string", "enum": list(HS_ALGORITHMS + KEY_ALGORITHMS),
                      "default": "HS256"},
        "exp": {"type": "integer", "minimum": 1, "default": 86400},
        "base64_secret": {"type": "boolean", "default": False},
        "lifetime_grace_period": {"type": "integer", "minimum": 0, "default": 0},
    },
    "dependencies": {
        "algorithm": {
            "oneOf": [
                {"properties": {"algorithm": {"enum": list(HS_ALGORITHMS),
                                              "default": "HS256"}}},
                {"properties": {"public_key": {"type": "string", "minLength": 1},
                                "algorithm": {"enum": list(KEY_ALGORITHMS)}},
                 "required": ["public_key"]},
            ],
        },
    },
    "encrypt_fields": ["secret"],
    "required": ["key"],
}

MISSING = {"message": "Missing JWT token in request"}
INVALID = {"message": "JWT token invalid"}
MISSING_KEY = {"message": "missing user key in JWT token"}
INVALID_KEY = {"message": "Invalid user key in JWT token"}
FAILED = {"message": "failed to verify jwt"}
ANONYMOUS_MISSING = {"message": "Invalid user authorization"}

_DEFAULT_CLAIMS = ("nbf", "exp")
#: APISIX's remove_specified_cookie: name=value pairs it keeps
_COOKIE_PAIR = re.compile(r"([a-zA-Z0-9\-_]*)=([a-zA-Z0-9\-._]*)")


def check_schema(conf: dict[str, Any], schema_type: str) -> str | None:
    if schema_type != "consumer":
        return None
    is_hs = conf["algorithm"].startswith("HS")
    if is_hs and not conf.get("secret"):
        return 'property "secret" is required when using HS based algorithms'
    if conf.get("base64_secret") and _b64(conf.get("secret", "")) is None:
        return "base64_secret required but the secret is not in base64 format"
    if not is_hs and not conf.get("public_key"):
        return "missing valid public key"
    return None


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


# --------------------------------------------------------------------------- confs
class _Conf:
    __slots__ = ("header", "query", "cookie", "hide", "key_claim", "store", "claims",
                 "anonymous", "challenge")

    def __init__(self, conf: dict[str, Any]):
        self.header = conf["header"]
        self.query = conf["query"]
        self.cookie = conf["cookie"]
        self.hide = bool(conf.get("hide_credentials"))
        self.key_claim = conf["key_claim_name"]
        self.store = bool(conf.get("store_in_ctx"))
        self.claims = tuple(conf.get("claims_to_verify") or ())
        self.anonymous = conf.get("anonymous_consumer")
        self.challenge = 'Bearer realm="%s"' % conf["realm"]


def prepare(conf: dict[str, Any]) -> _Conf:
    return _Conf(conf)


class Verifier:
    """A consumer's algorithm and key, ready to verify signatures (built once)."""

    __slots__ = ("algorithm", "key", "grace", "error")

    def __init__(self, conf: dict[str, Any]):
        self.algorithm: str = conf.get("algorithm") or "HS256"
        self.grace: int = int(conf.get("lifetime_grace_period") or 0)
        self.key: Any = None
        self.error: str | None = None
        try:
            self.key = _load_key(self.algorithm, conf)
        except Exception as e:  # noqa: BLE001 - a bad key fails its requests, not the build
            self.error = "invalid key for %s: %s" % (self.algorithm, e.__class__.__name__)

    def verify(self, token: str, signing_input: bytes, signature: bytes) -> bool:
        """True when the signature is the consumer's, with its algorithm only."""
        key = self.key
        if key is None:
            return False
        alg = self.algorithm
        if alg.startswith(("HS", "RS", "ES")):
            try:
                jws.verify(token, key, algorithms=[alg])
            except JOSEError:
                return False
            return True
        try:
            if alg == "EdDSA":
                key.verify(signature, signing_input)
            else:
                digest = _HASHES[alg[2:]]()
                key.verify(signature, signing_input,
                           padding.PSS(mgf=padding.MGF1(digest),
                                       salt_length=padding.PSS.AUTO), digest)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True


_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def _load_key(alg: str, conf: dict[str, Any]) -> Any:
    if alg in HS_ALGORITHMS:
        secret = conf.get("secret") or ""
        raw = _b64(secret) if conf.get("base64_secret") else secret.encode()
        if raw is None:
            raise ValueError("secret is not base64")
        return jwk.HMACKey(raw, alg)
    pem = str(conf.get("public_key") or "").encode()
    if alg.startswith(("RS", "ES")):
        return jwk.construct(pem, alg)
    key = load_pem_public_key(pem)
    if alg == "EdDSA":
        if not isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            raise ValueError("not an EdDSA key")
    elif not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA key")
    return key


def prepare_consumer(conf: dict[str, Any]) -> dict[str, Any]:
    out = dict(conf)
    out["verifier"] = Verifier(conf)
    return out


# --------------------------------------------------------------------------- tokens
class Token:
    """A parsed (not yet verified) compact JWS."""

    __slots__ = ("raw", "header", "payload", "signing_input", "signature")

    def __init__(self, raw: str, header: dict[str, Any], payload: dict[str, Any],
                 signing_input: bytes, signature: bytes):
        self.raw = raw
        self.header = header
        self.payload = payload
        self.signing_input = signing_input
        self.signature = signature


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def parse(raw: str) -> tuple[Token | None, str]:
    """(token, "") or (None, the reason)."""
    parts = raw.split(".")
    if len(parts) != 3:
        return None, "invalid jwt string"
    try:
        header = json.loads(_b64url(parts[0]))
        payload = json.loads(_b64url(parts[1]))
        signature = _b64url(parts[2])
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None, "invalid header or payload: not base64url-encoded JSON"
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None, "invalid header or payload: not JSON objects"
    return Token(raw, header, payload, (parts[0] + "." + parts[1]).encode("latin-1"),
                 signature), ""


def verify_claims(payload: dict[str, Any], claims: tuple[str, ...], grace: int,
                  now: float | None = None) -> str | None:
    """None, or why the registered claims fail (APISIX's rules and words)."""
    now = time.time() if now is None else now
    required = bool(claims)
    for name in claims or _DEFAULT_CLAIMS:
        value = payload.get(name)
        if value is None:
            if required:
                return "claim %s is missing" % name
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return "claim %s is not a number" % name
        if name == "nbf" and not value < now + grace:
            return "'nbf' claim not valid until %s" % _http_time(value)
        if name == "exp" and not value > now - grace:
            return "'exp' claim expired at %s" % _http_time(value)
    return None


def _http_time(value: float) -> str:
    try:
        return email.utils.formatdate(value, usegmt=True)
    except (OverflowError, ValueError, OSError):
        return str(value)


# --------------------------------------------------------------------------- the phase
def _fetch(conf: _Conf, ctx: Any) -> str | None:
    token = ctx.get_header(conf.header)
    if token is not None:
        if conf.hide:
            ctx.remove_header(conf.header)
        if token[:7] in ("Bearer ", "bearer "):
            return token[7:]
        return token
    token = consumers.query_arg(ctx, conf.query)
    if token is not None:
        if conf.hide:
            consumers.remove_query_arg(ctx, conf.query)
        return token
    token = ctx.var("cookie_" + conf.cookie)
    if token is None:
        return None
    if conf.hide:
        kept = [m.group(0) for m in _COOKIE_PAIR.finditer(ctx.get_header("Cookie") or "")
                if m.group(1) != conf.cookie]
        ctx.set_header("Cookie", "; ".join(kept))
    return token


def _find(conf: _Conf, ctx: Any) -> tuple[Any, dict[str, str]]:
    raw = _fetch(conf, ctx)
    if raw is None:
        _log.info("failed to fetch JWT token: JWT not found in cookie")
        return None, MISSING
    token, reason = parse(raw)
    if token is None:
        _log.warning("JWT token invalid: %s", reason)
        return None, INVALID
    user_key = token.payload.get(conf.key_claim)
    if user_key is None or user_key is False:
        return None, MISSING_KEY
    identity = consumers.find(ctx, NAME, user_key) if isinstance(user_key, str) else None
    if identity is None:
        _log.warning("failed to find consumer: invalid user key")
        return None, INVALID_KEY
    verifier: Verifier = identity.conf["verifier"]
    if verifier.error is not None:
        _log.error("failed to verify jwt: %s", verifier.error)
        return None, FAILED
    if token.header.get("alg") != verifier.algorithm:
        _log.warning("failed to verify jwt: algorithm mismatch, expected %s",
                     verifier.algorithm)
        return None, FAILED
    if not verifier.verify(raw, token.signing_input, token.signature):
        _log.warning("failed to verify jwt: signature mismatch")
        return None, FAILED
    problem = verify_claims(token.payload, conf.claims, verifier.grace)
    if problem is not None:
        _log.error("failed to verify jwt: %s", problem)
        return None, FAILED
    if conf.store:
        ctx.data["jwt_auth_payload"] = token.payload
    return identity, FAILED


def rewrite(conf: _Conf, ctx: Any) -> Any:
    identity, error = _find(conf, ctx)
    if identity is None:
        if conf.anonymous is None:
            ctx.set_response_header("WWW-Authenticate", conf.challenge)
            return 401, error
        identity = consumers.anonymous(ctx, NAME, conf.anonymous)
        if identity is None:
            ctx.set_response_header("WWW-Authenticate", conf.challenge)
            return 401, ANONYMOUS_MISSING
    consumers.attach(ctx, identity)
    return None
