"""Request variables (nginx's ``$uri``, ``$arg_x``, ``$http_x``, ``$cookie_x`` ...) computed
on demand.

Route conditions (``vars``, ``filter_func``) and the ``chash`` balancer read request
variables, but most requests never need any of them, so nothing is parsed up front: the
query string, the headers and the Cookie header are each turned into a dict the first time
a variable needs it, once per request. Lookups are compiled at build time into a getter per
variable name (:func:`getter`), so the per-request cost is one call, not a string dispatch.

Values follow nginx: strings (``str``; raw, not percent-decoded, like ``$arg_x``), the first
occurrence of a repeated argument or header, ``None`` for an absent one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["RequestVars", "getter", "Getter"]

Getter = Callable[["RequestVars"], Any]


class RequestVars:
    """The variables of one request. Built cheaply (a few assignments); parses lazily.

    ``headers`` is an iterable of ``(name, value)`` byte pairs, or a callable returning one
    (so a caller can defer even the pairing of its raw header list).
    """

    __slots__ = ("method", "path", "url", "host", "remote_addr", "server_port", "scheme",
                 "params", "body", "extra", "_headers_src", "_headers", "_args", "_cookies",
                 "_ip", "_post")

    def __init__(self, method: bytes = b"GET", path: bytes = b"/", url: bytes | None = None,
                 host: bytes = b"", remote_addr: bytes = b"",
                 headers: Iterable[tuple[bytes, bytes]] | Callable[[], Any] = (),
                 server_port: bytes = b"", scheme: str = "http", body: Any = None,
                 extra: dict[str, Any] | None = None):
        self.method = method
        self.path = path
        self.url = url if url is not None else path
        self.host = host
        self.remote_addr = remote_addr
        self.server_port = server_port
        self.scheme = scheme
        self.body = body
        #: ``uri_param_<name>`` values set by the parameter router
        self.params: dict[str, str] | None = None
        #: further variables (route_id, consumer_name...) set by later phases
        self.extra = extra
        self._headers_src = headers
        self._headers: dict[str, str] | None = None
        self._args: dict[str, str] | None = None
        self._cookies: dict[str, str] | None = None
        self._ip: Any = None
        self._post: dict[str, str] | None = None

    # ---- lazy tables
    def headers(self) -> dict[str, str]:
        """Header name (lower-case, ``-`` → ``_``, as ``$http_*``) → first value."""
        table = self._headers
        if table is None:
            src = self._headers_src
            if callable(src):
                src = src()
            table = {}
            for name, value in src:
                key = name.decode("latin-1").lower().replace("-", "_")
                if key not in table:
                    table[key] = value.decode("latin-1")
            self._headers = table
        return table

    def args(self) -> dict[str, str]:
        """Query argument name (lower-case: nginx's ``$arg_`` ignores case) → first value."""
        table = self._args
        if table is None:
            table = {}
            q = self.url.find(b"?")
            if q >= 0:
                for part in self.url[q + 1:].decode("latin-1").split("&"):
                    if not part:
                        continue
                    name, _, value = part.partition("=")
                    name = name.lower()
                    if name not in table:
                        table[name] = value
            self._args = table
        return table

    def cookies(self) -> dict[str, str]:
        table = self._cookies
        if table is None:
            table = {}
            raw = self.headers().get("cookie")
            if raw:
                for part in raw.split(";"):
                    name, eq, value = part.strip().partition("=")
                    if eq and name not in table:
                        table[name] = value
            self._cookies = table
        return table

    def post_args(self) -> dict[str, str]:
        """Form fields of an urlencoded body, when the body is buffered at this point
        (``body``: bytes, or a callable returning them or None)."""
        table = self._post
        if table is None:
            table = {}
            ctype = self.headers().get("content_type", "")
            body = self.body() if callable(self.body) else self.body
            if body and ctype.startswith("application/x-www-form-urlencoded"):
                for name, value in parse_qsl(body.decode("latin-1"),
                                             keep_blank_values=True):
                    table.setdefault(name, value)
            self._post = table
        return table

    def ip(self) -> Any:
        """``remote_addr`` as an ``ipaddress`` object (None when it is not an IP)."""
        ip = self._ip
        if ip is None:
            try:
                ip = ipaddress.ip_address(self.remote_addr.decode("latin-1"))
            except ValueError:
                ip = False
            self._ip = ip
        return ip or None

    # ---- generic access (filter_func, tests)
    def get(self, name: str, default: Any = None) -> Any:
        value = getter(name)(self)
        return default if value is None else value

    def __getitem__(self, name: str) -> Any:
        return getter(name)(self)


def _query_string(v: RequestVars) -> str | None:
    q = v.url.find(b"?")
    return v.url[q + 1:].decode("latin-1") if q >= 0 else None


_SIMPLE: dict[str, Getter] = {
    "uri": lambda v: v.path.decode("latin-1"),
    "request_uri": lambda v: v.url.decode("latin-1"),
    "host": lambda v: v.host.decode("latin-1"),
    "remote_addr": lambda v: v.remote_addr.decode("latin-1"),
    "request_method": lambda v: v.method.decode("latin-1"),
    "server_port": lambda v: v.server_port.decode("latin-1") or None,
    "scheme": lambda v: v.scheme,
    "query_string": _query_string,
    "args": _query_string,
    "is_args": lambda v: "?" if b"?" in v.url else "",
    "server_name": lambda v: v.host.decode("latin-1"),
    "hostname": lambda v: v.host.decode("latin-1"),
}

_getters: dict[str, Getter] = {}


def getter(name: str) -> Getter:
    """The compiled accessor for variable ``name`` (cached: the same name, the same
    closure). Unknown names read :attr:`RequestVars.extra` (APISIX vars set by phases)."""
    fn = _getters.get(name)
    if fn is None:
        fn = _make_getter(name)
        _getters[name] = fn
    return fn


def _make_getter(name: str) -> Getter:
    simple = _SIMPLE.get(name)
    if simple is not None:
        return simple
    if name.startswith("http_"):
        key = name[5:].lower().replace("-", "_")
        return lambda v: v.headers().get(key)
    if name.startswith("arg_"):
        key = name[4:].lower()
        return lambda v: v.args().get(key)
    if name.startswith("cookie_"):
        key = name[7:]
        return lambda v: v.cookies().get(key)
    if name.startswith("post_arg_"):
        key = name[9:]
        return lambda v: v.post_args().get(key)
    if name.startswith("uri_param_"):
        key = name[10:]
        return lambda v: v.params.get(key) if v.params else None
    return lambda v: v.extra.get(name) if v.extra else None
