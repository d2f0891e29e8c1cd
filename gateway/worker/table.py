"""The worker's compiled view of the config snapshot: router + resolved routes and upstreams.

A :class:`Table` is built off the hot path from the snapshot (etcd-style keys → APISIX
objects) and swapped in by the worker with one reference assignment; a request keeps the
table it started with. Everything that depends only on config is computed here, once, so the
data path does no per-request work for it: route → service merge, upstream resolution, node
address tuples, the ``Host`` header of ``pass_host: node|rewrite``, timeouts, pool limits.

Broken objects never break the build: each is skipped with an error-log line naming its key.
Runtime failures that APISIX answers with a status (dangling ``upstream_id`` → 502, missing
service → 404, no upstream at all or no node → 503) are kept as a route whose target carries
that status, so the route still matches and answers as APISIX does.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
import socket
from collections.abc import Mapping
from typing import Any

import gevent
import msgpack

from gateway.core import plane
from gateway.core import plugins as plugin_registry
from gateway.core.crypto import Keyring
from gateway.core.ctxvars import RequestVars
from gateway.core.log import log
from gateway.core.router import Route, Router
from gateway.worker.balancer import Balancer, ConsistentHash, RoundRobin, make_balancer
from gateway.worker.consumers import CONSUMER_GROUPS, CONSUMERS, ConsumerIndex
from gateway.worker.healthcheck import REGISTRY as HEALTH_REGISTRY
from gateway.worker.plugin_chain import Chain, ChainBuilder, merge_plugins
from gateway.worker.resolver import DNS
from gateway.worker.tls import CertIndex, UpstreamTLSFactory

__all__ = ["Table", "Target", "Upstream", "Node", "Timeouts", "request_vars",
           "setting", "duration", "size"]

ROUTES = "/apisix/routes/"
UPSTREAMS = "/apisix/upstreams/"
SERVICES = "/apisix/services/"
PLUGIN_CONFIGS = "/apisix/plugin_configs/"
GLOBAL_RULES = "/apisix/global_rules/"
PLUGIN_METADATA = "/apisix/plugin_metadata/"
#: standalone apisix.yaml's top-level ``plugins:`` list (spec §5.4)
PLUGINS = "/apisix/plugins"

DEFAULT_PORTS = {"http": 80, "https": 443, "grpc": 80, "grpcs": 443}
#: APISIX's proxy timeouts default to nginx's 60 s each
DEFAULT_TIMEOUT = 60.0
#: routes compiled between two yields to the event loop while building a table (a build
#: of 10,000 routes must not hold the loop for more than a few tens of milliseconds)
BUILD_YIELD_EVERY = 500


# --------------------------------------------------------------------------- settings
def setting(conf: Mapping[str, Any] | None, *path: str, default: Any = None) -> Any:
    """``conf[path[0]][path[1]]...`` or ``default`` when any level is missing or null."""
    cur: Any = conf
    for key in path:
        if not isinstance(cur, Mapping):
            return default
        cur = cur.get(key)
        if cur is None:
            return default
    return cur


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0,
          "M": 2592000.0, "y": 31536000.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|M|y)?")


def duration(value: Any, default: float) -> float:
    """nginx-style duration (``60s``, ``500ms``, ``1m30s``, ``60``) in seconds.

    Uses gateway.config's parser when that module provides one, so both agree.
    """
    if value is None:
        return default
    try:
        from gateway.config import parse_duration
    except ImportError:
        parse_duration = None
    if parse_duration is not None:
        return float(parse_duration(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().replace(" ", "")
    total, pos = 0.0, 0
    while pos < len(text):
        m = _DURATION.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError("invalid duration %r" % (value,))
        total += float(m.group(1)) * _UNITS[m.group(2) or "s"]
        pos = m.end()
    return total


def size(value: Any, default: int) -> int:
    """nginx-style size (``1m``, ``512k``, ``8192``, ``0``) in bytes."""
    if value is None:
        return default
    try:
        from gateway.config import parse_size
    except ImportError:
        parse_size = None
    if parse_size is not None:
        return int(parse_size(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    mult = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}.get(text[-1:], 1)
    return int(float(text[:-1] if mult != 1 else text) * mult)


# --------------------------------------------------------------------------- objects
class Timeouts:
    """Upstream connect/send/read timeouts in seconds (route ``timeout`` beats upstream's)."""

    __slots__ = ("connect", "send", "read")

    def __init__(self, connect: float = DEFAULT_TIMEOUT, send: float = DEFAULT_TIMEOUT,
                 read: float = DEFAULT_TIMEOUT):
        self.connect = connect
        self.send = send
        self.read = read

    @classmethod
    def from_conf(cls, conf: Any, base: Timeouts | None = None) -> Timeouts:
        base = base or _DEFAULT_TIMEOUTS
        if not isinstance(conf, Mapping):
            return base
        return cls(_positive(conf.get("connect"), base.connect),
                   _positive(conf.get("send"), base.send),
                   _positive(conf.get("read"), base.read))


def _positive(value: Any, default: float) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return default


_DEFAULT_TIMEOUTS = Timeouts()


class Node:
    """One upstream server; ``addr``/``family`` are ready for ``connect_ex``."""

    __slots__ = ("host", "port", "weight", "priority", "addr", "family", "name",
                 "host_header", "tls", "pool_key")

    def __init__(self, host: str, port: int, weight: int, priority: int,
                 addr: tuple, family: int, scheme: str):
        self.host = host
        self.port = port
        self.weight = weight
        self.priority = priority
        self.addr = addr
        self.family = family
        #: gateway.worker.tls.UpstreamTLS for `scheme: https`, else None
        self.tls = None
        #: idle connections are pooled by this: the address, plus the TLS settings if any
        self.pool_key: tuple = addr
        shown = "[%s]" % host if ":" in host and not host.startswith("[") else host
        #: ``host:port`` as logged ($upstream_addr)
        self.name = ("%s:%d" % (shown, port)).encode()
        #: the Host value for ``pass_host: node`` (port omitted when it is the default)
        self.host_header = (shown if DEFAULT_PORTS.get(scheme) == port
                            else "%s:%d" % (shown, port)).encode()

    def __repr__(self) -> str:
        return "Node(%s, weight=%d)" % (self.name.decode(), self.weight)


def request_vars(req: Any) -> RequestVars:
    """The variables of the worker's request object (gateway.worker.request.Request), for
    route conditions and chash keys; headers are paired only if a variable needs them."""
    client = req.client

    def headers() -> list[tuple[bytes, bytes]]:
        raw = req.hdrs
        pairs = [(raw[i], raw[i + 2]) for i in range(0, len(raw) - 3, 4)]
        if req.host_hdr is not None:
            pairs.append((b"host", req.host_hdr))
        for name, value in ((b"x-forwarded-for", req.xff), (b"content-length", req.clen),
                            (b"connection", req.conn), (b"expect", req.expect)):
            if value is not None:
                pairs.append((name, value))
        if req.xf:
            pairs.extend(req.xf.items())
        return pairs

    def body() -> bytes | None:
        data = getattr(req, "body", None)
        if isinstance(data, list) and all(isinstance(b, bytes) for b in data):
            return b"".join(data)
        return data if isinstance(data, bytes) else None

    return RequestVars(req.method, req.path, req.url or req.path, req.host, client.remote,
                       headers, client.port, getattr(client, "scheme", "http"), body)


class Upstream:
    """A resolved upstream object (from ``/apisix/upstreams/<id>`` or inline)."""

    __slots__ = ("id", "key", "nodes", "balancer", "scheme", "pass_host", "host_header",
                 "timeout", "pool_size", "pool_idle", "pool_requests", "retries",
                 "retry_timeout", "health", "error", "single", "tracks")

    def __init__(self, key: str, conf: Mapping[str, Any], pool_defaults: tuple[int, float, int],
                 resolver: _Resolver):
        self.key = key
        # the conf dict is not kept: nothing reads it after the build, and keeping it would
        # pin one dict tree per upstream (10,000 inline upstreams: megabytes of RSS)
        self.id = str(conf.get("id", "")) if conf.get("id") is not None else ""
        self.scheme = str(conf.get("scheme") or "http")
        self.pass_host = str(conf.get("pass_host") or "pass")
        self.host_header: bytes | None = None
        if self.pass_host == "rewrite":
            host = conf.get("upstream_host")
            if not isinstance(host, str) or not host:
                raise ValueError("`upstream_host` can't be empty when `pass_host` is `rewrite`")
            self.host_header = host.encode()
        elif self.pass_host not in ("pass", "node"):
            raise ValueError("invalid pass_host %r" % self.pass_host)
        self.timeout = Timeouts.from_conf(conf.get("timeout"))
        size_, idle, requests = pool_defaults
        pool = conf.get("keepalive_pool")
        if isinstance(pool, Mapping):
            size_ = int(pool.get("size", size_))
            idle = float(pool.get("idle_timeout", idle))
            requests = int(pool.get("requests", requests))
        self.pool_size, self.pool_idle, self.pool_requests = size_, idle, requests
        #: 0, or the status every request to this upstream gets (APISIX's runtime codes)
        self.error = 0
        self.nodes: list[Node] = []
        usable = 0  # nodes that resolved, weight 0 included (APISIX's #nodes)
        if self.scheme not in ("http", "https"):
            log.error("upstream %s: scheme %r is not supported yet", key, self.scheme)
            self.error = 502
        elif conf.get("nodes") is None:
            # service discovery (service_name + discovery_type) is not wired yet
            log.error("upstream %s: no nodes (service discovery is not supported yet)", key)
            self.error = 503
        else:
            self.nodes, usable = _parse_nodes(conf["nodes"], self.scheme, resolver, key)
            if self.scheme == "https":
                tls = resolver.tls.get(key, conf) if resolver.tls is not None else None
                if tls is None:
                    self.error = 502
                for node in self.nodes:
                    node.tls = tls
                    # SNI is fixed per node unless pass_host is `pass`: pool by it then
                    # (with `pass`, connections are reused across Hosts, as nginx does)
                    sni = None if self.pass_host == "pass" else \
                        self.host_header if self.pass_host == "rewrite" else node.host
                    node.pool_key = (node.addr, tls.key if tls is not None else None, sni)
            if not self.nodes:
                # APISIX: no node at all (or none resolved) → 503; nodes that all weigh 0
                # → 502 (no pick)
                self.error = 503 if not usable else 502
        # --- retries and health checks (gateway.worker.upstream, .healthcheck)
        retries = conf.get("retries")
        #: tries after the first: ``retries``, or APISIX's default #nodes - 1
        self.retries = retries if isinstance(retries, int) and not isinstance(retries, bool) \
            and retries >= 0 else max(usable - 1, 0)
        #: seconds after the first try when no more tries start (0: no limit)
        self.retry_timeout = float(conf.get("retry_timeout") or 0)
        #: health state read by the balancer and fed by the data path; None: no checks
        self.health = HEALTH_REGISTRY.health(key.split("#", 1)[0], conf.get("checks"),
                                             self.nodes)
        self.balancer: Balancer = make_balancer(conf, self.nodes, request_vars, self.health)
        balancer_type = type(self.balancer)
        #: the node every request goes to, when picking is moot (one node, no health
        #: checks, a balancer that keeps no per-pick state): no pick call per request
        self.single: Node | None = self.nodes[0] if len(self.nodes) == 1 \
            and self.health is None and balancer_type in (RoundRobin, ConsistentHash) else None
        #: the balancer wants to hear of each completed exchange (ewma, least_conn)
        self.tracks = balancer_type.done is not Balancer.done


class Target:
    """What a matched route leads to; lives in :attr:`Route.data`."""

    __slots__ = ("route_id", "service_id", "upstream", "error", "timeout", "websocket",
                 "chain")

    def __init__(self, route_id: str, service_id: str | None, upstream: Upstream | None,
                 error: int, timeout: Timeouts, websocket: bool = False,
                 chain: Chain | None = None):
        self.route_id = route_id
        #: the route's plugins (global rules included) per phase; None: no plugin work
        self.chain = chain
        self.service_id = service_id
        self.upstream = upstream
        #: 0, or the status the route answers with instead of proxying
        self.error = error
        self.timeout = timeout
        #: enable_websocket on the route or its service: Upgrade requests are tunnelled
        self.websocket = websocket


class _Resolver:
    """Node host → socket address, cached for one build.

    IP literals need no lookup. Names go to gateway.worker.resolver's cache (resolved off
    the event loop, re-resolved in the background; the worker rebuilds the table when an
    answer changes); :attr:`names` is what this build used.
    """

    __slots__ = ("cache", "names", "tls")

    def __init__(self) -> None:
        self.cache: dict[tuple[str, int], tuple[tuple, int] | None] = {}
        self.names: set[str] = set()
        #: contexts for `scheme: https` upstreams of this build (gateway.worker.tls)
        self.tls: UpstreamTLSFactory | None = None

    def resolve(self, host: str, port: int) -> tuple[tuple, int] | None:
        key = (host, port)
        if key in self.cache:
            return self.cache[key]
        bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        result: tuple[tuple, int] | None
        try:
            ip = ipaddress.ip_address(bare)
            if ip.version == 6:
                result = ((bare, port, 0, 0), socket.AF_INET6)
            else:
                result = ((bare, port), socket.AF_INET)
        except ValueError:
            self.names.add(bare)
            answer = DNS.lookup(bare)
            if answer is None:
                result = None
            elif answer[1] == socket.AF_INET6:
                result = ((answer[0], port, 0, 0), socket.AF_INET6)
            else:
                result = ((answer[0], port), socket.AF_INET)
        self.cache[key] = result
        return result


def _split_host_port(text: str, scheme: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, ``host`` (scheme's default port)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError("bad node address %r" % text)
        host, rest = text[1:end], text[end + 1:]
        if rest and not rest.startswith(":"):
            raise ValueError("bad node address %r" % text)
        port = int(rest[1:]) if rest else DEFAULT_PORTS.get(scheme, 80)
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        port = int(p)
    elif ":" in text:
        raise ValueError("IPv6 address must be enclosed with '[' and ']'")
    else:
        host, port = text, DEFAULT_PORTS.get(scheme, 80)
    if not host or not 1 <= port <= 65535:
        raise ValueError("invalid port %d" % port if host else "empty host")
    return host, port


def _parse_nodes(nodes: Any, scheme: str, resolver: _Resolver, key: str,
                 ) -> tuple[list[Node], int]:
    """Both node forms → (Node objects with weight > 0, highest priority first; the number
    of nodes that resolved, weight 0 included). A name that does not resolve skips its
    node (logged by the resolver)."""
    items: list[tuple[str, int, Any, Any]] = []
    if isinstance(nodes, Mapping):
        for addr, weight in nodes.items():
            host, port = _split_host_port(str(addr), scheme)
            items.append((host, port, weight, 0))
    elif isinstance(nodes, list):
        for n in nodes:
            if not isinstance(n, Mapping) or "host" not in n:
                raise ValueError("node needs host and weight")
            host = str(n["host"])
            if host.startswith("[") and host.endswith("]"):
                host = host[1:-1]
            elif ":" in host:
                raise ValueError("IPv6 address must be enclosed with '[' and ']'")
            port = n.get("port") or DEFAULT_PORTS.get(scheme, 80)
            items.append((host, int(port), n.get("weight", 1), n.get("priority", 0) or 0))
    else:
        raise ValueError("nodes must be a map or a list")
    out = []
    usable = 0
    for host, port, weight, priority in items:
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
            raise ValueError("invalid weight for node %s:%s" % (host, port))
        resolved = resolver.resolve(host, port)
        if resolved is None:
            continue
        usable += 1
        if weight == 0:
            continue
        out.append(Node(host, port, weight, int(priority), resolved[0], resolved[1], scheme))
    out.sort(key=lambda n: -n.priority)  # stable: config order within a priority
    return out, usable


# --------------------------------------------------------------------------- table
class Table:
    """Router + targets for one config snapshot. Immutable after :meth:`build`."""

    __slots__ = ("router", "upstreams", "routes", "global_chain", "certs", "patch")

    def __init__(self, router: Router, upstreams: dict[str, Upstream], routes: list[Route],
                 global_chain: Chain | None = None, certs: CertIndex | None = None,
                 patch: _Patch | None = None):
        self.router = router
        #: what a route-only change needs to rebuild just its routes (None: a full build)
        self.patch = patch
        #: server certificates by SNI, swapped with the rest of the config (TLS listeners)
        self.certs = certs if certs is not None else CertIndex()
        #: the global rules alone, for requests no route matched (they still run, then 404)
        self.global_chain = global_chain
        #: upstream id → Upstream (shared by every route that names it)
        self.upstreams = upstreams
        self.routes = routes

    @property
    def same_health(self) -> bool:
        """A patched table whose health checkers are the ones of the table it came from."""
        return self.patch is not None and self.patch.same_health

    @property
    def patches(self) -> int:
        """Route changes patched onto this table since its last full build."""
        return self.patch.count if self.patch is not None else 0

    @classmethod
    def empty(cls) -> Table:
        """No config yet: every request gets the 404 "route not found"."""
        return cls(Router(()), {}, [])

    @classmethod
    def build(cls, objects: Mapping[str, Any], conf: Mapping[str, Any],
              cooperative: bool = True,
              plugins: plugin_registry.PluginSet | None = None) -> Table:
        """Compile a snapshot. Never raises for bad objects: they are logged and skipped.

        With ``cooperative`` (the worker), yields to the gevent loop every
        :data:`BUILD_YIELD_EVERY` objects so requests keep flowing during a big build.
        ``plugins`` is the registry plugin confs are compiled with (default: the one
        this process loaded last; none loaded: every plugin is unknown)."""
        pool_defaults = (
            int(setting(conf, "nginx_config", "http", "upstream", "keepalive", default=320)),
            duration(setting(conf, "nginx_config", "http", "upstream", "keepalive_timeout"),
                     60.0),
            int(setting(conf, "nginx_config", "http", "upstream", "keepalive_requests",
                        default=1000)),
        )
        resolver = _Resolver()
        resolver.tls = UpstreamTLSFactory(objects, conf)
        upstreams: dict[str, Upstream] = {}
        services: dict[str, Mapping[str, Any]] = {}
        plugin_configs: dict[str, Any] = {}
        registry = plugins if plugins is not None else plugin_registry.current()
        if registry is None:
            registry = plugin_registry.PluginSet({}, [])
        override = _plugins_override(objects, conf)
        if override is not None:
            registry = plugin_registry.enabled_by(override, registry)
        chains = ChainBuilder(registry, _decryptor(conf))
        consumer_objs: dict[str, Any] = {}
        group_objs: dict[str, Any] = {}
        route_keys: list[str] = []
        for count, key in enumerate(sorted(objects), 1):
            if cooperative and count % BUILD_YIELD_EVERY == 0:
                _yield()
            if key.startswith(ROUTES):
                if _child(key, ROUTES):
                    route_keys.append(key)
                continue
            value = objects.get(key)  # .get: the store may change while we yield
            if key.startswith(UPSTREAMS) and _child(key, UPSTREAMS):
                if not isinstance(value, Mapping):
                    continue
                try:
                    upstreams[key[len(UPSTREAMS):]] = Upstream(key, value, pool_defaults,
                                                               resolver)
                except Exception as e:  # noqa: BLE001 - a bad object must not stop the build
                    log.error("skipping %s: invalid upstream: %s", key, e)
            elif key.startswith(SERVICES) and _child(key, SERVICES):
                if isinstance(value, Mapping):
                    services[key[len(SERVICES):]] = value
            elif key.startswith(PLUGIN_CONFIGS) and _child(key, PLUGIN_CONFIGS):
                plugin_configs[key[len(PLUGIN_CONFIGS):]] = value
            elif key.startswith(GLOBAL_RULES) and _child(key, GLOBAL_RULES):
                chains.add_global_rule(key, value)
            elif key.startswith(PLUGIN_METADATA) and _child(key, PLUGIN_METADATA):
                chains.add_metadata(key, key[len(PLUGIN_METADATA):], value)
            elif key.startswith(CONSUMERS):
                consumer_objs[key] = value
            elif key.startswith(CONSUMER_GROUPS) and _child(key, CONSUMER_GROUPS):
                group_objs[key[len(CONSUMER_GROUPS):]] = value
        chains.consumers = ConsumerIndex.build(consumer_objs, group_objs, chains,
                                               _yield if cooperative else None)

        builder = _RouteBuilder(upstreams, services, plugin_configs, pool_defaults, resolver,
                                chains)
        routes: list[Route] = []
        keys: list[str] = []    # each route's key (the list is sorted, as route_keys)
        # the worker's store (plane.LazyObjects) holds every route packed: a route keeps a
        # view over those bytes as its ``conf`` instead of the unpacked dict (see
        # plane.PackedObject); a plain dict of objects (tests, tools) keeps its dicts
        packed: Mapping[str, bytes] | None = getattr(objects, "packed", None)
        for seq, key in enumerate(route_keys):
            if cooperative and seq % BUILD_YIELD_EVERY == BUILD_YIELD_EVERY - 1:
                _yield()
            # .get: the store may change while we yield
            raw = packed.get(key) if packed is not None else None
            value = plane.unpack_object(raw) if raw is not None else objects.get(key)
            if not isinstance(value, Mapping):
                continue
            try:
                route = builder.route(key, value, seq)
            except Exception as e:  # noqa: BLE001
                log.error("skipping %s: invalid route: %s", key, e)
                continue
            if route is not None:
                if raw is not None and route.conf is value:
                    route.conf = plane.PackedObject(raw)
                routes.append(route)
                keys.append(key)
        router_args = {"mode": str(setting(conf, "apisix", "router", "http",
                                           default="radixtree_host_uri")),
                       "delete_uri_tail_slash": bool(setting(conf, "apisix",
                                                             "delete_uri_tail_slash",
                                                             default=False)),
                       "make_vars": request_vars}
        router = Router(routes, pause=_yield if cooperative else None, **router_args)
        DNS.retain(resolver.names)  # names no upstream uses any more are not re-resolved
        global_chain = chains.chain(None, None, "global rules")
        chains.finish()
        certs = CertIndex.build(objects, conf)
        return cls(router, upstreams, routes, global_chain, certs,
                   _Patch(builder, keys, router_args, conf,
                          plugins if plugins is not None else plugin_registry.current()))

    def patched(self, objects: Mapping[str, Any], changed: list[str],
                conf: Mapping[str, Any]) -> Table | None:
        """This table with the routes of ``changed`` keys rebuilt from ``objects`` (added,
        replaced or removed), every other route, upstream and chain kept as they are; None
        when the change is not for routes alone (or the table cannot be patched): then the
        caller builds the whole table.

        Why: a route write is the usual Admin API change, and a full build costs ~8 µs per
        route (80 ms with 10,000 routes, in every worker, for each write). A route depends
        on upstreams, services, plugin configs, consumers, global rules and metadata, but
        nothing depends on a route, so its own keys can be rebuilt alone, and the router
        indexes their paths again (:meth:`Router.patched`). What patches leave behind
        (plugin instances, shared upstreams or DNS names of replaced routes) is dropped by
        a full build once :attr:`patches` reaches :data:`PATCHES_BEFORE_FULL_BUILD` (the
        worker does it in the background). The result is the table a full build would
        make: routes keep the order of their keys."""
        patch = self.patch
        if patch is None or patch.conf is not conf \
                or patch.registry is not plugin_registry.current() \
                or not all(key.startswith(ROUTES) and _child(key, ROUTES) for key in changed):
            return None
        gone = sorted(set(changed))
        keys = patch.keys[:]        # (sorted, parallel to routes)
        routes = self.routes[:]
        removed: list[Route] = []
        added: list[Route] = []
        for key in gone:
            at = bisect.bisect_left(keys, key)
            if at < len(keys) and keys[at] == key:
                removed.append(routes[at])
                del keys[at], routes[at]
        packed: Mapping[str, bytes] | None = getattr(objects, "packed", None)
        builder = patch.builder
        renumber = False
        for key in gone:
            raw = packed.get(key) if packed is not None else None
            value = plane.unpack_object(raw) if raw is not None else objects.get(key)
            if not isinstance(value, Mapping):
                continue            # deleted (or not an object: a full build skips it too)
            try:
                route = builder.route(key, value, 0)
            except Exception as e:  # noqa: BLE001
                log.error("skipping %s: invalid route: %s", key, e)
                continue
            if route is None:
                continue
            if raw is not None and route.conf is value:
                route.conf = plane.PackedObject(raw)
            at = bisect.bisect_left(keys, key)
            # a seq between its neighbours' (the router orders same-priority routes by
            # it); when none is left between them, all routes are numbered again, in the
            # same order, so the kept index entries stay ordered
            before = routes[at - 1].seq if at > 0 else None
            after = routes[at].seq if at < len(routes) else None
            if before is None:
                route.seq = after - 1 if after is not None else 0
            elif after is None:
                route.seq = before + 1
            else:
                route.seq = (before + after) / 2
                renumber = renumber or not before < route.seq < after
            keys.insert(at, key)
            routes.insert(at, route)
            added.append(route)
        if renumber:
            for seq, route in enumerate(routes):
                route.seq = seq
        router = self.router.patched(removed, added, routes)
        DNS.retain(builder.resolver.names)
        builder.chains.finish()
        same_health = not any(_checked(route) for route in (*removed, *added))
        return Table(router, self.upstreams, routes, self.global_chain, self.certs,
                     _Patch(builder, keys, patch.router_args, conf, patch.registry,
                            patch.count + 1, same_health))


#: route-only changes patched onto a table in a row before the worker builds it whole
#: again in the background (dropping what patches leave behind)
PATCHES_BEFORE_FULL_BUILD = 100


class _Patch:
    """What :meth:`Table.patched` keeps of the full build: its route builder (upstreams,
    services, plugin configs, chains and consumers of that snapshot), each route's key
    (sorted, parallel to ``Table.routes``), the router's settings, and the conf and plugin
    registry the table was built with (a change of either needs a full build)."""

    __slots__ = ("builder", "keys", "router_args", "conf", "registry", "count", "same_health")

    def __init__(self, builder: _RouteBuilder, keys: list[str], router_args: dict[str, Any],
                 conf: Mapping[str, Any], registry: Any, count: int = 0,
                 same_health: bool = False):
        self.builder = builder
        self.keys = keys
        self.router_args = router_args
        self.conf = conf
        self.registry = registry
        self.count = count
        #: a patch whose routes (gone or new) have no health checks: the table's checkers
        #: are the previous table's (the worker need not look at every route for them)
        self.same_health = same_health


def _checked(route: Route) -> bool:
    upstream = route.data.upstream
    return upstream is not None and upstream.health is not None


def _plugins_override(objects: Mapping[str, Any], conf: Mapping[str, Any]) -> list[str] | None:
    """The names of apisix.yaml's ``plugins:`` list (``- name: x``; ``stream: true`` items
    are stream plugins, left out), None when the file has none or the node does not read
    its config from apisix.yaml (in etcd, ``/apisix/plugins`` is only a reload marker)."""
    items = objects.get(PLUGINS)
    if not isinstance(items, list):
        return None
    try:
        from gateway.config import config_provider
        if config_provider(dict(conf)) != "yaml":
            return None
    except Exception:  # noqa: BLE001 - a partial conf (unit tests): not standalone
        return None
    names = []
    for item in items:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str) \
                and not item.get("stream"):
            names.append(item["name"])
    return names


def _decryptor(conf: Mapping[str, Any]) -> Any:
    """The keyring's decrypt for plugins' ENCRYPT_FIELDS, None when they are stored plain
    (``apisix.data_encryption.enable_encrypt_fields: false``) or there is no keyring."""
    if not setting(conf, "apisix", "data_encryption", "enable_encrypt_fields", default=True):
        return None
    keyring = Keyring.from_conf(dict(conf))
    return keyring.decrypt if keyring.keys else None


def _yield() -> None:
    """Let the loop run (requests, heartbeats) in the middle of a long build; a no-op when
    called from the hub itself, where switching is not allowed."""
    if gevent.getcurrent() is not gevent.get_hub():
        gevent.sleep(0)


def _child(key: str, prefix: str) -> bool:
    rest = key[len(prefix):]
    return bool(rest) and "/" not in rest


class _RouteBuilder:
    """Route object + its service → Route with a Target (shared service upstreams)."""

    __slots__ = ("upstreams", "services", "plugin_configs", "pool_defaults", "resolver",
                 "service_upstreams", "chains", "inline", "packer")

    def __init__(self, upstreams: dict[str, Upstream], services: dict[str, Mapping[str, Any]],
                 plugin_configs: dict[str, Any], pool_defaults: tuple[int, float, int],
                 resolver: _Resolver, chains: ChainBuilder):
        self.chains = chains
        self.upstreams = upstreams
        self.services = services
        self.plugin_configs = plugin_configs
        self.pool_defaults = pool_defaults
        self.resolver = resolver
        self.service_upstreams: dict[str, Upstream | None] = {}
        #: packed inline upstream conf → its Upstream, for the ones routes may share
        self.inline: dict[bytes, Upstream] = {}
        #: one Packer per build: packb() makes a new one per call, 4x the cost
        self.packer = msgpack.Packer(use_bin_type=True)

    def route(self, key: str, conf: Mapping[str, Any], seq: int) -> Route | None:
        if conf.get("status", 1) == 0:
            return None
        route_id = str(conf.get("id") or key[len(ROUTES):])
        route = Route.from_conf(conf, seq=seq)  # shape errors first: they skip the route
        service_id = conf.get("service_id")
        error = 0
        upstream: Upstream | None = None
        merged: Mapping[str, Any] = conf
        service = None
        if service_id is not None:
            service_id = str(service_id)
            service = self.services.get(service_id)
            if service is None:
                log.error("route %s: failed to fetch service configuration by id: %s",
                          route_id, service_id)
                error = 404
            else:
                merged = _merge_service(service, conf)
        plugin_config_id = conf.get("plugin_config_id")
        if not error and plugin_config_id is not None \
                and str(plugin_config_id) not in self.plugin_configs:
            log.error("route %s: failed to fetch plugin config by id: %s",
                      route_id, plugin_config_id)
            error = 503
        chain = None
        if not error:
            # plugins first: an invalid plugin conf skips the route (raises), as APISIX
            plugin_config = self.plugin_configs.get(str(plugin_config_id)) \
                if plugin_config_id is not None else None
            chain = self.chains.chain(route_id, merge_plugins(service, plugin_config, conf),
                                      key)
            upstream, error = self._upstream(key, route_id, conf, service_id, service)
        timeout = Timeouts.from_conf(merged.get("timeout"),
                                     upstream.timeout if upstream is not None else None)
        target = Target(route_id, service_id, upstream, error, timeout, bool(
            conf.get("enable_websocket") or (service or {}).get("enable_websocket")), chain)
        if merged is not conf:
            route = Route.from_conf(merged, seq=seq)
        route.data = target
        route.id = route_id
        return route

    def _upstream(self, key: str, route_id: str, conf: Mapping[str, Any],
                  service_id: str | None, service: Mapping[str, Any] | None,
                  ) -> tuple[Upstream | None, int]:
        if conf.get("upstream") is not None:
            up = self._inline(key, conf["upstream"])
            return up, up.error
        if conf.get("upstream_id") is not None:
            return self._by_id(route_id, conf["upstream_id"])
        if service is not None and service_id is not None:
            if service.get("upstream") is not None:
                if service_id not in self.service_upstreams:
                    skey = SERVICES + service_id + "#upstream"
                    try:
                        self.service_upstreams[service_id] = Upstream(
                            skey, service["upstream"], self.pool_defaults, self.resolver)
                    except Exception as e:  # noqa: BLE001
                        log.error("skipping %s: invalid upstream: %s", skey, e)
                        self.service_upstreams[service_id] = None
                up = self.service_upstreams[service_id]
                return (up, up.error) if up is not None else (None, 503)
            if service.get("upstream_id") is not None:
                return self._by_id(route_id, service["upstream_id"])
        log.error("route %s: missing upstream configuration in Route or Service", route_id)
        return None, 503

    def _inline(self, key: str, conf: Any) -> Upstream:
        """A route's inline upstream: the Upstream of an earlier route of this build when
        both confs are the same (byte for byte, packed) and sharing cannot change behaviour.

        Many routes often repeat one inline upstream (10,000 routes to the same node); one
        compiled Upstream + nodes + balancer per route was ~1 KB each, a third of a
        10,000-route worker's table. Only stateless upstreams are shared: no health checks
        (a checker is named after its route), plain http (TLS contexts are made per
        upstream key), and a balancer whose pick does not depend on earlier picks (round
        robin with one node per priority group, chash). A multi-node round robin, ewma or
        least_conn keeps state that must stay per route, as in APISIX."""
        try:
            signature = self.packer.pack(conf)
        except Exception:  # noqa: BLE001 - not packable (a test's odd value): no sharing
            self.packer.reset()
            signature = None
        if signature is not None:
            up = self.inline.get(signature)
            if up is not None:
                return up
        up = Upstream(key + "#upstream", conf, self.pool_defaults, self.resolver)
        if signature is not None and _stateless(up):
            self.inline[signature] = up
        return up

    def _by_id(self, route_id: str, upstream_id: Any) -> tuple[Upstream | None, int]:
        up = self.upstreams.get(str(upstream_id))
        if up is None:
            log.error("route %s: failed to find upstream by id: %s", route_id, upstream_id)
            return None, 502
        return up, up.error


def _stateless(up: Upstream) -> bool:
    """True when routes can share ``up`` without changing what any of them does."""
    if up.health is not None or up.scheme != "http":
        return False
    balancer = up.balancer
    kind = type(balancer)
    # round robin keeps no state for a group of one node: as many groups as nodes
    return kind is ConsistentHash or \
        (kind is RoundRobin and len(balancer.groups) == len(balancer.nodes))


def _merge_service(service: Mapping[str, Any], route: Mapping[str, Any]) -> dict[str, Any]:
    """Route fields win over the service's; plugins merge by name (route's conf wins);
    the service's ``hosts`` apply when the route has neither ``host`` nor ``hosts``."""
    merged = {k: v for k, v in service.items()
              if k not in ("id", "name", "desc", "labels", "create_time", "update_time")}
    merged.update(route)
    plugins = service.get("plugins")
    if isinstance(plugins, Mapping):
        merged["plugins"] = {**plugins, **(route.get("plugins") or {})}
    if route.get("host") is not None and route.get("hosts") is None:
        merged.pop("hosts", None)
    return merged


def make_upstream(key: str, conf: Mapping[str, Any], worker_conf: Mapping[str, Any]) -> Upstream:
    """An upstream compiled outside a table build (a plugin's inline upstream, e.g.
    traffic-split's), with the worker's pool settings. Host names resolve from the DNS
    cache as at build time (an unresolved one leaves the node out until the plugin
    conf is rebuilt)."""
    http = ("nginx_config", "http", "upstream")
    pool_defaults = (
        int(setting(worker_conf, *http, "keepalive", default=320)),
        duration(setting(worker_conf, *http, "keepalive_timeout"), 60.0),
        int(setting(worker_conf, *http, "keepalive_requests", default=1000)),
    )
    resolver = _Resolver()
    resolver.tls = UpstreamTLSFactory({}, worker_conf)
    return Upstream(key, conf, pool_defaults, resolver)
