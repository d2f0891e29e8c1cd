"""The ``ctx`` a plugin's phase functions receive: one small object per request that has
plugins (requests of routes without plugins never create one).

Reading the request::

    ctx.route_id, ctx.service_id     ids of the matched route and its service (str | None)
    ctx.vars                         the request variables (RequestVars): ctx.vars["arg_x"],
                                     ctx.var("http_user_agent"), ctx.var("uri")...
    ctx.method, ctx.uri, ctx.request_uri, ctx.remote_addr, ctx.host     (str)
    ctx.args                         the query string, None without "?" (cheaper than vars)
    ctx.get_header(name)             first value of a request header, None when absent
    ctx.body()                       the request body (bytes) when the whole body arrived
                                     with the request head, else None (it is streaming)

Changing what goes to the upstream (rewrite/access/before_proxy)::

    ctx.set_header(name, value)      replace (value: str, number, list = several; None or
                                     "" = remove)
    ctx.add_header(name, value)      add one more
    ctx.remove_header(name)
    ctx.set_uri(uri)                 the upstream request target, path + query, as sent
    ctx.set_method(method)           e.g. "POST"
    ctx.set_host(host)               the Host header sent upstream
    ctx.set_upstream(upstream)       (rewrite/access) proxy this request to another
                                     compiled upstream (gateway.worker.table.Upstream, e.g.
                                     ctx.client.server.table.upstreams[id]): the node is
                                     picked from it (traffic-split)

    (Host, Content-Length, Transfer-Encoding, Connection, X-Real-IP and X-Forwarded-* are
    the gateway's own: use set_host for the Host; the others are not changed this way.)

The response::

    ctx.set_response_header(name, value) / add_response_header / remove_response_header
                                     in any phase: applied to whatever response the client
                                     gets (the upstream's or a plugin's exit)
    ctx.set_response_headers(((name, value), ...))   several set_response_header at once
    ctx.status                       in header_filter, body_filter, log: the response status
                                     (header_filter may change it)
    ctx.response_headers             in header_filter: ResponseHeaders (get/set/add/remove/
                                     items), the headers about to be sent
    ctx.response_length()            in header_filter: the body length when known, else None

Per-request state::

    ctx.data                         a dict for plugins' own per-request values (use your
                                     plugin's name in the key)
    ctx.consumer                     the authenticated consumer (set by auth plugins;
                                     gateway.worker.consumers.Identity: .username,
                                     .group_id, .custom_id, .credential_id), else None;
                                     vars consumer_name / consumer_group_id follow it
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.core.ctxvars import RequestVars
from gateway.worker.response import COLSP, CRLF

if TYPE_CHECKING:
    from gateway.worker.plugin_chain import Chain

__all__ = ["OWN_HEADERS", "PluginCtx", "ResponseHeaders", "header_bytes"]

#: request headers the gateway writes itself (set_header leaves them alone)
OWN_HEADERS = frozenset(("content-length", "transfer-encoding", "connection", "x-real-ip",
                         "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                         "x-forwarded-port", "upgrade", "expect", "keep-alive"))


#: header name → its request-variable key (lower case, ``-`` → ``_``, as ``$http_*``)
_keys: dict[str, str] = {}
_raw_keys: dict[bytes, str] = {}


def _header_key(name: str) -> str:
    key = _keys.get(name)
    if key is None:
        key = name.lower().replace("-", "_")
        if len(_keys) < 1024:
            _keys[name] = key
    return key


def _raw_key(raw: bytes) -> str:
    key = raw.decode("latin-1").lower().replace("-", "_")
    if len(_raw_keys) < 4096:
        _raw_keys[raw] = key
    return key


def header_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).encode("latin-1", "replace")


def _values(value: Any) -> list[bytes]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [header_bytes(v) for v in value]
    return [header_bytes(value)]


def _block_pairs(block: bytes) -> list[tuple[str, str]]:
    """(name, value) of each line of a rendered header block."""
    pairs = []
    for line in block.split(b"\r\n"):
        if line:
            name, _, value = line.partition(b": ")
            pairs.append((name.decode("latin-1"), value.decode("latin-1")))
    return pairs


class ResponseHeaders:
    """The response headers during header_filter: (name, value) str pairs in order;
    lookups ignore case."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[list[str]] | None = None):
        self.pairs: list[list[str]] = pairs if pairs is not None else []

    @classmethod
    def from_flat(cls, flat: list[bytes]) -> ResponseHeaders:
        """From the worker's ``[name, ": ", value, CRLF, ...]`` list."""
        return cls([[flat[i].decode("latin-1"), flat[i + 2].decode("latin-1")]
                    for i in range(0, len(flat) - 3, 4)])

    def flat(self) -> list[bytes]:
        out: list[bytes] = []
        for name, value in self.pairs:
            out += (name.encode("latin-1"), COLSP, header_bytes(value), CRLF)
        return out

    def render(self) -> bytes:
        return b"".join(self.flat())

    def get(self, name: str, default: str | None = None) -> str | None:
        low = name.lower()
        for n, v in self.pairs:
            if n.lower() == low:
                return v
        return default

    def remove(self, name: str) -> None:
        low = name.lower()
        self.pairs = [p for p in self.pairs if p[0].lower() != low]

    def set(self, name: str, value: Any) -> None:
        self.remove(name)
        for v in _values(value):
            self.pairs.append([name, v.decode("latin-1")])

    def add(self, name: str, value: Any) -> None:
        for v in _values(value):
            self.pairs.append([name, v.decode("latin-1")])

    def items(self) -> list[tuple[str, str]]:
        return [(n, v) for n, v in self.pairs]

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None


class PluginCtx:
    """See the module docstring for the API plugins use; the rest is the runner's."""

    __slots__ = ("client", "req", "target", "chain", "route_id", "service_id", "data",
                 "consumer", "status", "response_headers", "head_edits", "up_method",
                 "up_uri", "up_host", "_vars", "_resp_ops", "_filtered", "_body_started")

    def __init__(self, client: Any, req: Any, target: Any, chain: Chain):
        self.client = client
        self.req = req
        self.target = target
        self.chain = chain
        self.route_id: str | None = target.route_id if target is not None else None
        self.service_id: str | None = target.service_id if target is not None else None
        self.data: dict[str, Any] = {}
        self.consumer: Any = None
        self.status = 0
        self.response_headers: ResponseHeaders | None = None
        self.head_edits = False
        self.up_method: bytes | None = None
        self.up_uri: bytes | None = None
        self.up_host: bytes | None = None
        self._vars: RequestVars | None = None
        self._resp_ops: list[tuple[str, str, Any]] | None = None
        self._filtered: dict[int, bool] | None = None
        self._body_started = False

    # ---- the request
    @property
    def vars(self) -> RequestVars:
        v = self._vars
        if v is None:
            from gateway.worker.table import request_vars
            v = request_vars(self.req)
            extra = {"route_id": self.route_id, "service_id": self.service_id}
            if self.consumer is not None:
                extra["consumer_name"] = self.consumer.username
                extra["consumer_group_id"] = self.consumer.group_id
            v.extra = extra
            self._vars = v
            if self.up_uri is not None:
                self._sync_uri(v)
        return v

    def var(self, name: str, default: Any = None) -> Any:
        return self.vars.get(name, default)

    @property
    def method(self) -> str:
        return self.req.method.decode("latin-1")

    @property
    def uri(self) -> str:
        return self.req.path.decode("latin-1")

    @property
    def request_uri(self) -> str:
        return (self.req.url or self.req.path).decode("latin-1")

    @property
    def args(self) -> str | None:
        """The query string (``$args``), None when the request had no ``?``."""
        url = self.req.url
        q = url.find(b"?") if url else -1
        return url[q + 1:].decode("latin-1") if q >= 0 else None

    @property
    def host(self) -> str:
        return self.req.host.decode("latin-1")

    @property
    def remote_addr(self) -> str:
        return self.client.remote.decode("latin-1")

    def get_header(self, name: str) -> str | None:
        key = _header_key(name)
        if self._vars is None:
            # the common case (key-auth's apikey...): a scan of the forwarded headers, in
            # the order the variables table takes its first value from, without building it
            hdrs = self.req.hdrs
            for i in range(0, len(hdrs) - 3, 4):
                raw = hdrs[i]
                k = _raw_keys.get(raw)
                if k is None:
                    k = _raw_key(raw)
                if k == key:
                    return hdrs[i + 2].decode("latin-1")
        return self.vars.headers().get(key)

    def body(self) -> bytes | None:
        req = self.req
        if req.stream:
            return None
        data = req.body
        if data is None:
            return b""
        return data[0] if len(data) == 1 else b"".join(data)

    # ---- the upstream request
    def _edit(self, name: str, values: list[bytes], replace: bool) -> None:
        low = name.lower()
        if low == "host":
            if values:
                self.set_host(values[-1])
            return
        if low in OWN_HEADERS:
            return
        req = self.req
        hdrs = req.hdrs
        if replace:
            lowb = low.encode("latin-1")
            for i in range(0, len(hdrs) - 3, 4):
                if hdrs[i].lower() == lowb:
                    hdrs = [x for i in range(0, len(hdrs) - 3, 4)
                            if hdrs[i].lower() != lowb for x in hdrs[i:i + 4]]
                    break
            else:
                hdrs = list(hdrs)  # (usually absent: no rebuilt list)
        else:
            hdrs = list(hdrs)  # rebound, never mutated (a detached copy may share it)
        raw = name.encode("latin-1")
        for value in values:
            hdrs += (raw, COLSP, value, CRLF)
        req.hdrs = hdrs
        if req.chunked:
            req.nhdrs = len(hdrs)
        v = self._vars
        if v is not None:
            v._headers = None  # noqa: SLF001 - re-read on the next variable lookup
            v._cookies = None  # noqa: SLF001

    def edit_headers(self, remove: frozenset[bytes], add: Any) -> None:
        """One pass over the upstream request headers: drop those whose lower-case name
        is in ``remove``, then append ``add`` ((name, value) bytes pairs)."""
        req = self.req
        hdrs = req.hdrs
        for i in range(0, len(hdrs) - 3, 4):
            if hdrs[i].lower() in remove:
                hdrs = [x for i in range(0, len(hdrs) - 3, 4)
                        if hdrs[i].lower() not in remove for x in hdrs[i:i + 4]]
                break
        else:
            if not add:
                return  # nothing to remove, nothing to add: the list stays as it is
            hdrs = list(hdrs)  # rebound, never mutated (a detached copy may share it)
        for raw, value in add:
            hdrs += (raw, COLSP, value, CRLF)
        req.hdrs = hdrs
        if req.chunked:
            req.nhdrs = len(hdrs)
        v = self._vars
        if v is not None:
            v._headers = None  # noqa: SLF001
            v._cookies = None  # noqa: SLF001

    def append_headers(self, flat: list[bytes]) -> None:
        """Add ``[name, ": ", value, CRLF, ...]`` (pre-rendered, names the caller knows
        absent) to the upstream request headers."""
        req = self.req
        req.hdrs = hdrs = req.hdrs + flat   # rebound, never mutated
        if req.chunked:
            req.nhdrs = len(hdrs)
        v = self._vars
        if v is not None:
            v._headers = None  # noqa: SLF001
            v._cookies = None  # noqa: SLF001

    def set_header(self, name: str, value: Any) -> None:
        # an empty value removes the header, as nginx's ngx.req.set_header does
        self._edit(name, [v for v in _values(value) if v], True)

    def add_header(self, name: str, value: Any) -> None:
        self._edit(name, _values(value), False)

    def remove_header(self, name: str) -> None:
        self._edit(name, [], True)

    def set_uri(self, uri: str | bytes) -> None:
        """Also what later plugins see as ``$uri`` (the path part), as after nginx's
        ``ngx.req.set_uri``; ``$upstream_uri`` is the whole target."""
        self.up_uri = uri if isinstance(uri, bytes) else uri.encode("latin-1", "replace")
        self.head_edits = True
        if self._vars is not None:
            self._sync_uri(self._vars)

    def _sync_uri(self, v: RequestVars) -> None:
        up_uri = self.up_uri
        v.path = up_uri.split(b"?", 1)[0]
        v.extra["upstream_uri"] = up_uri.decode("latin-1")

    def set_method(self, method: str | bytes) -> None:
        self.up_method = method if isinstance(method, bytes) else method.encode("latin-1")
        self.head_edits = True

    def set_host(self, host: str | bytes) -> None:
        self.up_host = host if isinstance(host, bytes) else host.encode("latin-1")
        self.head_edits = True

    def set_upstream(self, upstream: Any) -> None:
        """The runner reads ``self.target`` after the access phase: a copy of the route's
        target that leads to ``upstream`` (its status when it cannot serve, its timeouts)."""
        from gateway.worker.table import Target
        old = self.target
        if old is None:
            return
        self.target = Target(old.route_id, old.service_id, upstream, upstream.error,
                             upstream.timeout, old.websocket, old.chain)

    def edit_head(self, parts: list[bytes]) -> None:
        """Request.upstream_request's hook: method, target and Host of the head."""
        if self.up_method is not None:
            parts[0] = self.up_method
        if self.up_uri is not None:
            parts[2] = self.up_uri
        if self.up_host is not None:
            parts[4] = self.up_host
            self.req.up_host = self.up_host

    # ---- the response
    def _resp(self, op: str, name: str, value: Any) -> None:
        headers = self.response_headers
        if headers is not None:
            if op == "remove":
                headers.remove(name)
            else:
                getattr(headers, op)(name, value)
            return
        if self._resp_ops is None:
            self._resp_ops = []
        self._resp_ops.append((op, name, value))

    def set_response_header(self, name: str, value: Any) -> None:
        self._resp("set", name, value)

    def set_response_headers(self, items: Any) -> None:
        """:meth:`set_response_header` for each ``(name, value)`` of ``items``, in order."""
        headers = self.response_headers
        if headers is not None:
            for name, value in items:
                headers.set(name, value)
            return
        ops = self._resp_ops
        if ops is None:
            ops = self._resp_ops = []
        for name, value in items:
            ops.append(("set", name, value))

    def set_response_block(self, names: frozenset[bytes], block: bytes) -> None:
        """Set several response headers rendered by the caller: ``block`` is
        ``b"Name: value\\r\\n..."``, ``names`` the lower-case names it sets (the hot path
        of limit-count's quota headers: appended to the head as it is)."""
        headers = self.response_headers
        if headers is not None:
            for name, value in _block_pairs(block):
                headers.set(name, value)
            return
        ops = self._resp_ops
        if ops is None:
            ops = self._resp_ops = []
        ops.append(("block", names, block))

    def add_response_header(self, name: str, value: Any) -> None:
        self._resp("add", name, value)

    def remove_response_header(self, name: str) -> None:
        self._resp("remove", name, None)

    def open_response(self, status: int, headers: ResponseHeaders) -> None:
        """The runner, before header_filter: pending header edits apply now, later ones
        go straight to ``headers``."""
        self.status = status
        self.response_headers = headers
        ops = self._resp_ops
        if ops:
            self._resp_ops = None
            for op, name, value in ops:
                if op == "remove":
                    headers.remove(name)
                elif op == "block":
                    for bname, bvalue in _block_pairs(value):
                        headers.set(bname, bvalue)
                else:
                    getattr(headers, op)(name, value)

    def response_length(self) -> int | None:
        """In header_filter: the body's length when known. An upstream's Content-Length is
        kept by its connection (the gateway frames the body), not among the headers; a
        plugin's own response has it in the headers."""
        up = self.client.up
        if up is not None:
            clen = up.content_length()
            clen = clen.decode("latin-1") if clen is not None else None
        else:
            headers = self.response_headers
            clen = headers.get("content-length") if headers is not None else None
        return int(clen) if clen is not None and clen.strip().isdigit() else None

    @property
    def has_response_edits(self) -> bool:
        return bool(self._resp_ops)

    def passes(self, inst: Any) -> bool:
        """``_meta.filter`` of ``inst``, evaluated once per request (as APISIX caches it)."""
        seen = self._filtered
        if seen is None:
            seen = self._filtered = {}
        key = id(inst)
        ok = seen.get(key)
        if ok is None:
            ok = seen[key] = bool(inst.filter(self.vars))
        return ok
