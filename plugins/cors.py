"""cors: Cross-Origin Resource Sharing headers (APISIX ``cors``, priority 4000).

rewrite: an ``OPTIONS`` request (preflight) is answered 200 at once, without the upstream.
header_filter (every response, the preflight's included): when the request's Origin is
allowed, ``Access-Control-Allow-Origin`` / ``-Allow-Methods`` / ``-Max-Age`` /
``-Allow-Headers``, ``-Expose-Headers`` when set, ``-Allow-Credentials: true`` with
``allow_credential``; ``Timing-Allow-Origin`` from ``timing_allow_origins(_by_regex)``;
``Vary: Origin`` whenever ``allow_origins`` is not ``*``.

Origins as APISIX decides them: ``*`` (any), ``**`` (echo the request's Origin), one origin
(sent as configured, whatever the request's), a comma list (the request's Origin when it is
in the list, else no CORS headers), ``allow_origins_by_regex`` (replaces ``allow_origins``;
the request's Origin when one regex matches), ``allow_origins_by_metadata`` (names of
origin lists in the plugin metadata ``allow_origins`` map: the request's Origin when one of
the named lists allows it; tried first, then ``allow_origins`` when that is not ``*``, or
the regexes; a metadata change applies at the next table build, routes untouched). With ``allow_credential``, ``*``
is refused at config time for every option. ``allow_methods: "**"`` = every method,
``allow_headers: "**"`` = echo ``Access-Control-Request-Headers``.
"""

from __future__ import annotations

import re
from typing import Any

NAME = "cors"
PRIORITY = 4000
VERSION = 0.1

ORIGINS_PATTERN = r"^(\*|\*\*|null|\w+://[^,]+(,\w+://[^,]+)*)$"
_REGEXES = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 4096},
            "minItems": 1, "uniqueItems": True}

SCHEMA = {
    "type": "object",
    "properties": {
        "allow_origins": {"type": "string", "pattern": ORIGINS_PATTERN, "default": "*"},
        "allow_methods": {"type": "string", "default": "*"},
        "allow_headers": {"type": "string", "default": "*"},
        "expose_headers": {"type": "string"},
        "max_age": {"type": "integer", "default": 5},
        "allow_credential": {"type": "boolean", "default": False},
        "allow_origins_by_regex": _REGEXES,
        "allow_origins_by_metadata": _REGEXES,
        "timing_allow_origins": {"type": "string", "pattern": ORIGINS_PATTERN},
        "timing_allow_origins_by_regex": _REGEXES,
    },
}

METADATA_SCHEMA = {
    "type": "object",
    "properties": {
        "allow_origins": {"type": "object",
                          "additionalProperties": {"type": "string",
                                                   "pattern": ORIGINS_PATTERN}},
    },
}

ALL_METHODS = "GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS,CONNECT,TRACE"


def check_schema(conf: dict[str, Any], schema_type: str) -> str | None:
    if schema_type == "metadata":
        return None
    if conf.get("allow_credential"):
        if "*" in (conf.get("allow_origins"), conf.get("allow_methods"),
                   conf.get("allow_headers"), conf.get("expose_headers"),
                   conf.get("timing_allow_origins")):
            return "you can not set '*' for other option when 'allow_credential' is true"
    for field in ("allow_origins_by_regex", "timing_allow_origins_by_regex"):
        for rule in conf.get(field) or ():
            try:
                re.compile(rule)
            except re.error as e:
                return "failed to compile regex %s: %s" % (rule, e)
    return None


class _Origins:
    """One of allow_origins / timing_allow_origins (+ its by_regex list), compiled."""

    __slots__ = ("value", "listed", "regex")

    def __init__(self, value: str | None, regexes: list[str] | None):
        self.value = value
        #: a comma list: the set of its origins
        self.listed = frozenset(value.split(",")) if value and "," in value else None
        self.regex = re.compile("|".join(regexes)).search if regexes else None

    def allowed(self, origin: str | None) -> str | None:
        """The Allow-Origin value for a request from ``origin`` (None: none)."""
        if self.regex is not None:
            return origin if origin is not None and self.regex(origin) else None
        value = self.value
        if value is None:
            return None
        if value == "**":
            value = origin or "*"
            if "," in value:   # an echoed Origin holding a list: checked as a list
                return origin if origin in value.split(",") else None
        if self.listed is not None:
            return origin if origin in self.listed else None
        return value


class _Cors:
    __slots__ = ("origins", "timing", "methods", "headers", "echo_headers", "expose",
                 "max_age", "credential", "vary", "by_metadata", "local_too")

    def __init__(self, conf: dict[str, Any], metadata: dict[str, Any]):
        #: the metadata origin lists the conf names (None: the option is not set)
        self.by_metadata: tuple[_Origins, ...] | None = None
        names = conf.get("allow_origins_by_metadata")
        if names:
            lists = metadata.get("allow_origins") or {}
            self.by_metadata = tuple(_Origins(lists[n], None) for n in names
                                     if isinstance(lists.get(n), str))
        #: with by_metadata: allow_origins (or the regexes) still apply when the metadata
        #: refuses, if allow_origins is not "*" (APISIX)
        self.local_too = conf.get("allow_origins", "*") != "*"
        self.origins = _Origins(conf.get("allow_origins", "*"),
                                conf.get("allow_origins_by_regex"))
        timing = conf.get("timing_allow_origins")
        timing_re = conf.get("timing_allow_origins_by_regex")
        self.timing = _Origins(timing, timing_re) if timing or timing_re else None
        methods = conf.get("allow_methods", "*")
        self.methods = ALL_METHODS if methods == "**" else methods
        headers = conf.get("allow_headers", "*")
        self.echo_headers = headers == "**"
        self.headers = headers
        expose = conf.get("expose_headers")
        self.expose = expose if expose else None
        self.max_age = conf.get("max_age", 5)
        self.credential = bool(conf.get("allow_credential"))
        self.vary = conf.get("allow_origins", "*") != "*"


def prepare(conf: dict[str, Any], metadata: dict[str, Any]) -> _Cors:
    return _Cors(conf, metadata)


def rewrite(conf: _Cors, ctx: Any) -> Any:
    if ctx.method == "OPTIONS":
        return 200
    return None


def _match(origin: str | None, allowed: str | None) -> bool:
    return allowed == "*" or origin == allowed


def _by_metadata(conf: _Cors, origin: str | None) -> str | None:
    for origins in conf.by_metadata or ():
        if _match(origin, origins.allowed(origin)):
            return origin
    return None


def header_filter(conf: _Cors, ctx: Any) -> None:
    origin = ctx.get_header("origin")
    headers = ctx.response_headers
    if conf.by_metadata is None:
        allow = conf.origins.allowed(origin)
    else:
        allow = _by_metadata(conf, origin)
        if not _match(origin, allow) and conf.local_too:
            allow = conf.origins.allowed(origin)
            if not _match(origin, allow):
                allow = None
    if conf.vary:
        headers.add("Vary", "Origin")
    if allow is not None:
        headers.set("Access-Control-Allow-Origin", allow)
        headers.set("Access-Control-Allow-Methods", conf.methods)
        headers.set("Access-Control-Max-Age", conf.max_age)
        if conf.expose is not None:
            headers.set("Access-Control-Expose-Headers", conf.expose)
        if conf.echo_headers:
            headers.set("Access-Control-Allow-Headers",
                        ctx.get_header("access-control-request-headers"))
        else:
            headers.set("Access-Control-Allow-Headers", conf.headers)
        if conf.credential:
            headers.set("Access-Control-Allow-Credentials", "true")
    if conf.timing is not None:
        timing = conf.timing.allowed(origin)
        if timing is not None and _match(origin, timing):
            headers.set("Timing-Allow-Origin", timing)
