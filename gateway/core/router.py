"""HTTP route matching (pure code: built once per config snapshot, no I/O).

The rules are APISIX's radixtree routers (spec §3.1):

* a URI without ``*`` matches exactly; a trailing ``*`` makes it a prefix (``/foo*`` matches
  ``/foo``, ``/foo/a`` and ``/foobar``; ``/foo/*`` matches ``/foo/`` and below; ``/*`` all);
* an exact match beats any prefix, a longer prefix beats a shorter one, and among routes with
  the same path the higher ``priority`` is tried first (ties keep insertion order), then
  ``methods`` (and, in ``radixtree_uri`` mode, ``hosts``) must pass, otherwise the next
  candidate is tried;
* in ``radixtree_host_uri`` mode (APISIX's default) routes that carry hosts are tried first,
  exact host before wildcard hosts (longest wildcard first), and only when none of them
  matches are the host-less routes tried — a host route wins over a host-less one whatever
  their priorities;
* hosts are compared lower-cased without the port; ``*.example.com`` matches any deeper
  subdomain, not the apex.

Matching never scans all routes: exact paths are a dict lookup, prefixes are grouped by
length (one dict probe per distinct prefix length, longest first). A radix tree can replace
:class:`_Paths` later without changing :meth:`Router.match`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Route", "Router", "normalize_path", "strip_port", "routing_path", "request_host",
           "PATH_CACHE", "HOST_CACHE"]

HTTP_METHODS = frozenset(("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
                          "CONNECT", "TRACE", "PURGE"))


class Route:
    """One route as the router sees it; ``data`` is what the caller attaches (the worker's
    table puts the resolved upstream/target there), ``conf`` the (merged) route object."""

    __slots__ = ("id", "uris", "hosts", "methods", "priority", "conf", "data", "seq")

    def __init__(self, id: str, uris: list[str], hosts: list[str] | None = None,
                 methods: Iterable[str] | None = None, priority: int = 0,
                 conf: Mapping[str, Any] | None = None, data: Any = None, seq: int = 0):
        self.id = id
        self.uris = uris
        self.hosts = [h.lower() for h in hosts] if hosts else None
        self.methods = frozenset(m.encode() for m in methods) if methods else None
        self.priority = priority
        self.conf = conf
        self.data = data
        self.seq = seq

    @classmethod
    def from_conf(cls, conf: Mapping[str, Any], data: Any = None, seq: int = 0) -> Route:
        """Read ``uri``/``uris``, ``host``/``hosts``, ``methods``, ``priority`` from a route
        object. Raises ``ValueError`` on a shape the schema would have refused."""
        uris = conf.get("uris")
        if uris is None:
            uri = conf.get("uri")
            uris = [uri] if uri is not None else None
        if not uris or not all(isinstance(u, str) and u for u in uris):
            raise ValueError("route needs uri or uris (non-empty strings)")
        hosts = conf.get("hosts")
        if hosts is None and conf.get("host") is not None:
            hosts = [conf["host"]]
        if hosts is not None and (not isinstance(hosts, list)
                                  or not all(isinstance(h, str) and h for h in hosts)):
            raise ValueError("hosts must be a list of non-empty strings")
        methods = conf.get("methods")
        if methods is not None:
            if not isinstance(methods, list) or not all(m in HTTP_METHODS for m in methods):
                raise ValueError("methods must be a list of HTTP methods")
        priority = conf.get("priority", 0)
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise ValueError("priority must be an integer")
        rid = conf.get("id")
        return cls(str(rid) if rid is not None else "", list(uris), hosts, methods or None,
                   priority, conf, data, seq)

    def host_ok(self, host: bytes) -> bool:
        """Host filter for ``radixtree_uri`` mode (hosts are not an index there)."""
        hosts = self.hosts
        if hosts is None:
            return True
        h = host.decode("latin-1")
        for pattern in hosts:
            if pattern == h or pattern == "*":
                return True
            if pattern[:1] == "*" and h.endswith(pattern[1:]) and len(h) > len(pattern) - 1:
                return True
        return False

    def __repr__(self) -> str:
        return "Route(%r, %r)" % (self.id, self.uris)


def _order(routes: list[Route]) -> list[Route]:
    return sorted(routes, key=lambda r: (-r.priority, r.seq))


class _Paths:
    """Routes of one host bucket, indexed by path: exact dict + prefixes grouped by length."""

    __slots__ = ("exact", "prefixes", "filter_hosts")

    def __init__(self, filter_hosts: bool):
        self.exact: dict[bytes, list[Route]] = {}
        #: (length, {prefix: routes}) longest first
        self.prefixes: list[tuple[int, dict[bytes, list[Route]]]] = []
        self.filter_hosts = filter_hosts

    def add(self, uri: str, route: Route) -> None:
        path = uri.encode()
        if path.endswith(b"*"):
            prefix = path[:-1]
            for length, group in self.prefixes:
                if length == len(prefix):
                    group.setdefault(prefix, []).append(route)
                    return
            self.prefixes.append((len(prefix), {prefix: [route]}))
        else:
            self.exact.setdefault(path, []).append(route)

    def finish(self) -> None:
        for path, routes in self.exact.items():
            self.exact[path] = _dedupe(_order(routes))
        self.prefixes.sort(key=lambda item: -item[0])
        for _length, group in self.prefixes:
            for prefix, routes in group.items():
                group[prefix] = _dedupe(_order(routes))

    def match(self, method: bytes, host: bytes, path: bytes) -> Route | None:
        routes = self.exact.get(path)
        if routes is not None:
            for r in routes:  # the common case, inlined: no methods/hosts filter
                if r.methods is None and (r.hosts is None or not self.filter_hosts):
                    return r
                if r.methods is not None and method not in r.methods:
                    continue
                if self.filter_hosts and r.hosts is not None and not r.host_ok(host):
                    continue
                return r
        n = len(path)
        for length, group in self.prefixes:
            if length <= n:
                routes = group.get(path[:length])
                if routes is not None:
                    r = self._first(routes, method, host)
                    if r is not None:
                        return r
        return None

    def _first(self, routes: list[Route], method: bytes, host: bytes) -> Route | None:
        for r in routes:
            if r.methods is not None and method not in r.methods:
                continue
            if self.filter_hosts and r.hosts is not None and not r.host_ok(host):
                continue
            return r
        return None


def _dedupe(routes: list[Route]) -> list[Route]:
    """A route listing the same uri twice appears once per bucket."""
    seen: set[int] = set()
    out = []
    for r in routes:
        if id(r) not in seen:
            seen.add(id(r))
            out.append(r)
    return out


class Router:
    """Matches (method, Host, path) to a :class:`Route`; immutable once built."""

    __slots__ = ("host_exact", "host_wild", "plain", "has_hosts", "strip_tail_slash")

    def __init__(self, routes: Iterable[Route], mode: str = "radixtree_host_uri",
                 delete_uri_tail_slash: bool = False):
        by_host = mode != "radixtree_uri"
        self.host_exact: dict[bytes, _Paths] = {}
        #: (suffix incl. leading dot, or b"" for "*", paths) longest suffix first
        self.host_wild: list[tuple[bytes, _Paths]] = []
        self.plain = _Paths(filter_hosts=not by_host)
        self.strip_tail_slash = delete_uri_tail_slash
        wild: dict[bytes, _Paths] = {}
        for route in routes:
            if not by_host or route.hosts is None:
                for uri in route.uris:
                    self.plain.add(uri, route)
                continue
            for h in route.hosts:
                hb = h.encode()
                if hb[:1] == b"*":
                    bucket = wild.get(hb[1:])
                    if bucket is None:
                        bucket = wild[hb[1:]] = _Paths(filter_hosts=False)
                else:
                    bucket = self.host_exact.get(hb)
                    if bucket is None:
                        bucket = self.host_exact[hb] = _Paths(filter_hosts=False)
                for uri in route.uris:
                    bucket.add(uri, route)
        self.host_wild = sorted(wild.items(), key=lambda item: -len(item[0]))
        for bucket in self.host_exact.values():
            bucket.finish()
        for _suffix, bucket in self.host_wild:
            bucket.finish()
        self.plain.finish()
        self.has_hosts = bool(self.host_exact or self.host_wild)

    @classmethod
    def build(cls, confs: Iterable[Mapping[str, Any]], mode: str = "radixtree_host_uri",
              delete_uri_tail_slash: bool = False) -> Router:
        """A router over route objects (``status: 0`` ones excluded). Raises ValueError on
        a malformed route; the worker's table builds :class:`Route` objects itself so it can
        skip bad ones one by one."""
        routes = [Route.from_conf(c, seq=i) for i, c in enumerate(confs)
                  if c.get("status", 1) != 0]
        return cls(routes, mode, delete_uri_tail_slash)

    def match(self, method: bytes, host: bytes | None, path: bytes) -> Route | None:
        """The route for a request; ``host`` is the Host header as received (the port is
        stripped and it is lower-cased here), ``path`` the URI path without the query."""
        return self.match_host(method, strip_port(host) if host else b"", path)

    def match_host(self, method: bytes, h: bytes, path: bytes) -> Route | None:
        """:meth:`match` with the host already lower-cased and without port (the data path
        computes it once per request for X-Forwarded-Host and the log as well)."""
        if self.strip_tail_slash and len(path) > 1 and path[-1:] == b"/":
            path = path[:-1]
        if self.has_hosts and h:
            bucket = self.host_exact.get(h)
            if bucket is not None:
                r = bucket.match(method, h, path)
                if r is not None:
                    return r
            for suffix, bucket in self.host_wild:
                if h.endswith(suffix) and len(h) > len(suffix):
                    r = bucket.match(method, h, path)
                    if r is not None:
                        return r
        return self.plain.match(method, h, path)


def strip_port(host: bytes) -> bytes:
    """``Example.COM:8080`` → ``example.com``; ``[::1]:80`` → ``[::1]``."""
    if host[-1:] != b"]":
        i = host.rfind(b":")
        if i >= 0 and (host[:1] != b"[" or host[i - 1:i] == b"]"):
            host = host[:i]
    return host.lower()


def _unhex(c: int) -> int:
    if 48 <= c <= 57:
        return c - 48
    c |= 0x20
    if 97 <= c <= 102:
        return c - 87
    return -1


def normalize_path(path: bytes) -> bytes | None:
    """The path as nginx's ``$uri`` sees it: percent-decoded, ``//`` merged, ``.``/``..``
    segments resolved. None when it climbs above the root (nginx answers 400).

    Only called when the path contains ``%``, ``//`` or ``/.`` (rare), so cost is no concern.
    """
    if b"%" in path:
        out = bytearray()
        i, n = 0, len(path)
        while i < n:
            c = path[i]
            if c == 37 and i + 2 < n:
                hi, lo = _unhex(path[i + 1]), _unhex(path[i + 2])
                if hi >= 0 and lo >= 0:
                    out.append(hi * 16 + lo)
                    i += 3
                    continue
            out.append(c)
            i += 1
        path = bytes(out)
        if b"\x00" in path:
            return None
    segments: list[bytes] = []
    for seg in path.split(b"/")[1:]:
        if seg == b"" or seg == b".":
            continue
        if seg == b"..":
            if not segments:
                return None
            segments.pop()
            continue
        segments.append(seg)
    out_path = b"/" + b"/".join(segments)
    if len(out_path) > 1 and (path.endswith(b"/") or path.endswith(b"/.")
                              or path.endswith(b"/..")):
        out_path += b"/"
    return out_path


#: raw path → routing path (b"" = invalid), for :func:`routing_path`. Paths repeat, and
#: checking one for ``%``, ``//`` and ``/.`` costs more than a dict probe (the data path
#: probes it inline before calling). Bounded: cleared when full.
PATH_CACHE: dict[bytes, bytes] = {}
#: Host header value → ``$host`` (lower-cased, without port), for :func:`request_host`
HOST_CACHE: dict[bytes, bytes] = {}
CACHE_MAX = 4096


def routing_path(path: bytes, cache: bool = True) -> bytes:
    """The path a request is routed on (``$uri``): normalized when it needs it, ``b""``
    when it is invalid (nginx answers 400). Authority-form (CONNECT) and ``*`` pass as is."""
    routed = PATH_CACHE.get(path) if cache else None
    if routed is not None:
        return routed
    routed = path
    if path[:1] == b"/" and (b"%" in path or b"/." in path or b"//" in path):
        routed = normalize_path(path) or b""
    if cache:
        if len(PATH_CACHE) >= CACHE_MAX:
            PATH_CACHE.clear()
        PATH_CACHE[path] = routed
    return routed


def request_host(value: bytes) -> bytes:
    """``$host`` from a Host header value (see :func:`strip_port`), cached."""
    host = HOST_CACHE.get(value)
    if host is None:
        host = strip_port(value)
        if len(HOST_CACHE) >= CACHE_MAX:
            HOST_CACHE.clear()
        HOST_CACHE[value] = host
    return host
