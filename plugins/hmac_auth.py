"""hmac-auth: requests signed with a consumer's ``secret_key`` (APISIX 3.x ``hmac-auth``,
the draft-cavage "Signature" scheme; priority 2530, rewrite phase).

The client sends ``Authorization: Signature keyId="…",algorithm="hmac-sha256",
headers="@request-target date",signature="<base64>"``. The signing string is the keyId,
then for each listed header ``name: value`` (``@request-target``: ``METHOD request_uri``;
a header the request lacks is left out), each line ending with ``\\n``. Checks, in
APISIX's order: keyId and signature present, algorithm present, the consumer, the
algorithm allowed, the ``Date`` within ``clock_skew`` seconds, every ``signed_headers``
entry signed, the signature, then (``validate_request_body``) ``Digest: SHA-256=<base64>``
of the body (a body over ``max_req_body_size``: 413).

A malformed or missing header answers 401 ``client request can't be validated: <why>``;
every other failure 401 ``client request can't be validated`` (the reason goes to the
error log at warn, never the secret nor the signature); ``WWW-Authenticate: hmac
realm="hmac"``. A request body that had not fully arrived with the request head cannot be
checked yet (it streams): such requests are refused when ``validate_request_body`` is on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from email.utils import mktime_tz, parsedate_tz
from typing import Any

from gateway.core.log import log as _log
from gateway.worker import consumers

NAME = "hmac-auth"
PRIORITY = 2530
VERSION = 0.1
TYPE = "auth"
CONSUMER_KEY = "key_id"
ENCRYPT_FIELDS = ("secret_key",)

ALLOWED_ALGORITHMS = ["hmac-sha1", "hmac-sha256", "hmac-sha512"]

SCHEMA = {
    "type": "object",
    "title": "work with route or service object",
    "properties": {
        "allowed_algorithms": {"type": "array", "minItems": 1,
                               "items": {"type": "string", "enum": ALLOWED_ALGORITHMS},
                               "default": ALLOWED_ALGORITHMS},
        "clock_skew": {"type": "integer", "default": 300, "minimum": 1},
        "signed_headers": {"type": "array", "default": ["date"],
                           "items": {"type": "string", "minLength": 1, "maxLength": 50}},
        "validate_request_body": {
            "type": "boolean", "default": False,
            "description": "A boolean value telling the plugin to enable body validation"},
        "max_req_body_size": {
            "type": "integer", "minimum": 1, "default": 67108864,
            "description": "maximum request body size in bytes the plugin reads into "
                           "memory to validate the digest when validate_request_body is "
                           "true; larger requests are rejected with 413."},
        "hide_credentials": {"type": "boolean", "default": False},
        "realm": consumers.realm_schema("hmac"),
        "anonymous_consumer": consumers.ANONYMOUS_CONSUMER_SCHEMA,
    },
}

CONSUMER_SCHEMA = {
    "type": "object",
    "title": "work with consumer object",
    "properties": {
        "key_id": {"type": "string", "minLength": 1, "maxLength": 256},
        "secret_key": {"type": "string", "minLength": 1, "maxLength": 256},
    },
    "encrypt_fields": ["secret_key"],
    "required": ["key_id", "secret_key"],
}

_DIGESTS = {"hmac-sha1": hashlib.sha1, "hmac-sha256": hashlib.sha256,
            "hmac-sha512": hashlib.sha512}
#: one ``name="value"`` of the Signature header (Lua's ``%s*(%w+)="(.-)"``)
_FIELD = re.compile(r'\s*([A-Za-z0-9]+)="(.*?)"')
FAILED = {"message": "client request can't be validated"}
ANONYMOUS_MISSING = {"message": "Invalid user authorization"}


class _Conf:
    __slots__ = ("algorithms", "clock_skew", "signed_headers", "validate_body",
                 "max_body", "hide", "anonymous", "challenge")

    def __init__(self, conf: dict[str, Any]):
        self.algorithms = frozenset(conf["allowed_algorithms"])
        self.clock_skew = conf["clock_skew"]
        self.signed_headers = tuple(conf["signed_headers"] or ())
        self.validate_body = bool(conf["validate_request_body"])
        self.max_body = conf["max_req_body_size"]
        self.hide = bool(conf.get("hide_credentials"))
        self.anonymous = conf.get("anonymous_consumer")
        self.challenge = 'hmac realm="%s"' % conf["realm"]


def prepare(conf: dict[str, Any]) -> _Conf:
    return _Conf(conf)


def prepare_consumer(conf: dict[str, Any]) -> dict[str, Any]:
    out = dict(conf)
    out["secret_bytes"] = str(conf["secret_key"]).encode()
    return out


class _Rejected(Exception):
    def __init__(self, reason: str, status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def parse_authorization(value: str | None) -> dict[str, Any]:
    """The fields of a ``Signature`` Authorization header; _Rejected when unusable."""
    if value is None:
        raise _Rejected("missing Authorization header")
    if not value.startswith("Signature"):
        raise _Rejected("Authorization header does not start with 'Signature'")
    params: dict[str, Any] = {}
    for field in value[9:].split(","):
        if not field:
            continue
        m = _FIELD.search(field)
        if m is None:
            continue
        key, val = m.group(1), m.group(2)
        if key in ("keyId", "algorithm", "signature"):
            params[key] = val
        elif key == "headers":
            params["headers"] = val.split(" ")
    return params


def signing_string(key_id: str, headers: list[str], method: str, request_uri: str,
                   header: Any) -> bytes:
    """keyId, then ``name: value`` per signed header (``@request-target``: ``METHOD
    uri``), each line ending with ``\\n``. ``header(name)`` reads a request header."""
    lines = [key_id]
    for name in headers:
        value = header(name)
        if value is None:
            if name == "@request-target":
                lines.append("%s %s" % (method, request_uri or "/"))
        else:
            lines.append("%s: %s" % (name, value))
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


def _validate(conf: _Conf, ctx: Any, params: dict[str, Any]) -> Any:
    key_id = params.get("keyId")
    signature = params.get("signature")
    if not key_id or not signature:
        raise _Rejected("keyId or signature missing")
    algorithm = params.get("algorithm")
    if not algorithm:
        raise _Rejected("algorithm missing")
    identity = consumers.find(ctx, NAME, key_id)
    if identity is None:
        raise _Rejected("Invalid key_id")
    if algorithm not in conf.algorithms:
        raise _Rejected("Invalid algorithm")
    date = ctx.get_header("Date")
    if date is None:
        raise _Rejected("Date header missing. failed to validate clock skew")
    parsed = parsedate_tz(date)
    if parsed is None:
        raise _Rejected("Invalid GMT format time")
    try:
        when = mktime_tz(parsed)
    except (OverflowError, ValueError):
        raise _Rejected("Invalid GMT format time") from None
    if abs(time.time() - when) > conf.clock_skew:
        raise _Rejected("Clock skew exceeded")
    signed = params.get("headers") or []
    for name in conf.signed_headers:
        if name not in signed:
            raise _Rejected('expected header "%s" missing in signing' % name)
    try:
        given = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise _Rejected("Invalid signature") from None
    expected = hmac.new(identity.conf["secret_bytes"],
                        signing_string(key_id, signed, ctx.method, ctx.request_uri,
                                       ctx.get_header),
                        _DIGESTS[algorithm]).digest()
    if not hmac.compare_digest(given, expected):
        raise _Rejected("Invalid signature")
    if conf.validate_body:
        digest = ctx.get_header("Digest")
        if digest is None:
            raise _Rejected("Invalid digest")
        body = ctx.body()
        size = len(body) if body is not None else int(ctx.req.clen or 0)
        if size > conf.max_body:
            raise _Rejected("request size %d is greater than the maximum size %d allowed"
                            % (size, conf.max_body), 413)
        if body is None:
            raise _Rejected("the request body is streaming: its digest cannot be checked")
        made = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
        if not hmac.compare_digest(made.encode(), digest.encode("latin-1", "replace")):
            raise _Rejected("Invalid digest")
    return identity


def rewrite(conf: _Conf, ctx: Any) -> Any:
    identity = None
    error: Any = FAILED
    try:
        params = parse_authorization(ctx.get_header("Authorization"))
    except _Rejected as e:
        _log.warning("client request can't be validated: %s", e.reason)
        error = {"message": "client request can't be validated: " + e.reason}
    else:
        try:
            identity = _validate(conf, ctx, params)
        except _Rejected as e:
            if e.status is not None:
                _log.error("failed to read request body: %s", e.reason)
                return e.status, {"message": e.reason}
            _log.warning("client request can't be validated: %s", e.reason)
    if identity is None:
        if conf.anonymous is None:
            ctx.set_response_header("WWW-Authenticate", conf.challenge)
            return 401, error
        identity = consumers.anonymous(ctx, NAME, conf.anonymous)
        if identity is None:
            ctx.set_response_header("WWW-Authenticate", conf.challenge)
            return 401, ANONYMOUS_MISSING
    if conf.hide:
        ctx.remove_header("Authorization")
    consumers.attach(ctx, identity)
    return None
