"""Prometheus metrics with APISIX's names and labels (``plugins/prometheus.py`` feeds them,
this module owns them), summed over the workers of a node.

How the numbers of several workers add up: prometheus-client's *multiprocess mode*. The
master points ``PROMETHEUS_MULTIPROC_DIR`` at ``<prefix>/logs/prometheus`` (wiped when it
starts) before any worker forks (:func:`prepare_dir`); each worker's counters and
histograms then live in small mmap'ed files of that directory (a value update is a
``struct.pack_into``, no syscall), and whichever worker answers a scrape sums every file.
When a worker exits the master calls :func:`worker_exited` (``mark_process_dead``: its
"live" gauges go away, its counters stay counted). This module must therefore not be
imported by the master before :func:`prepare_dir` ran: prometheus-client picks its value
class when it is first imported.

Per-request work (the ``log`` phase): one dict lookup for the label children of
(route, status, node, consumer) — created once — then a counter increment, two or three
histogram observations and two counter increments, added up in Python; the changed values
go to the files once per event-loop iteration (:func:`flush`), shared by the ~20 requests a
loaded worker completes per iteration. A scrape answered by another worker may thus miss
this worker's last iteration (APISIX's own scrape serves a cache up to
``refresh_interval`` old); the answering worker flushes its own first.

Node-wide values are gauges: the connection gauges (``state`` = active, accepted, handled,
reading, writing, waiting) and ``http_requests_total`` are each worker's own counts, set by
the worker's 1 s tick and summed over live workers; ``node_info``, ``etcd_reachable`` and
``upstream_status`` are computed by the worker answering the scrape.

The export server (``plugin_attr.prometheus.export_addr``, 127.0.0.1:9091, URI
``export_uri``) is a listener opened by the master and shared by the workers, like the
Control API's. Unlike APISIX the text is rendered at each scrape (not from a cache refreshed
every ``refresh_interval``): a scrape costs a read of the metric files.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
from bisect import bisect_left
from typing import Any

from gateway.core.log import log

__all__ = ["prepare_dir", "worker_exited", "Metrics", "METRICS", "ExportServer"]

ENV = "PROMETHEUS_MULTIPROC_DIR"
#: APISIX's latency buckets (ms)
DEFAULT_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000,
                   60000)
#: the per-request label children kept; beyond it the cache starts over
CACHE_LIMIT = 10000
STATUS_LABELS = ("code", "route", "matched_uri", "matched_host", "service", "consumer",
                 "node", "request_type", "request_llm_model", "llm_model",
                 "response_source")
LATENCY_LABELS = ("type", "route", "service", "consumer", "node", "request_type",
                  "request_llm_model", "llm_model")
BANDWIDTH_LABELS = LATENCY_LABELS
CONNECTION_STATES = ("active", "accepted", "handled", "reading", "writing", "waiting")


def enabled(conf: dict[str, Any]) -> bool:
    return "prometheus" in (conf.get("plugins") or ())


def attr(conf: dict[str, Any]) -> dict[str, Any]:
    return ((conf.get("plugin_attr") or {}).get("prometheus") or {})


def prepare_dir(prefix: str, wipe: bool = True) -> str:
    """Master, before forking: the multiprocess directory, emptied (a fresh node starts its
    counters at zero, as an nginx restart does)."""
    path = os.environ.get(ENV) or os.path.join(prefix, "logs", "prometheus")
    if wipe and os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    os.environ[ENV] = path
    return path


def worker_exited(pid: int) -> None:
    """Master, when it reaps a worker: its live gauges stop counting."""
    path = os.environ.get(ENV)
    if not path:
        return
    try:
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(pid, path)
    except Exception as e:  # noqa: BLE001 - metrics must not disturb the master
        log.warning("prometheus: cannot mark worker %d dead: %s", pid, e)


#: prometheus-client's own layout of a value in its mmap'ed files: value, timestamp
_PACK = struct.Struct("dd").pack_into


class Cell:
    """One value of a metric file, updated in place: the write prometheus-client's
    ``MmapedValue.inc`` does, without its lock (a worker is one thread) and its key lookup
    (the position is fixed). Only this module writes these values. ``v`` is the value,
    ``w`` what the file holds (they differ between a request's log phase and the flush)."""

    __slots__ = ("file", "pos", "v", "w")

    def __init__(self, value: Any):
        self.file = value._file     # the worker's MmapedDict for this metric type
        key = value._key
        self.v = self.w = self.file.read_value(key)[0]    # (creates the entry when new)
        self.pos = self.file._positions[key]

    def add(self, amount: float) -> None:
        v = self.v + amount
        self.v = self.w = v
        _PACK(self.file._m, self.pos, v, 0.0)  # _m: re-read, the file may have grown


class Hist:
    """A histogram child: its sum and its buckets (the multiprocess files hold
    non-cumulative buckets; the collector accumulates them)."""

    __slots__ = ("sum", "buckets", "bounds")

    def __init__(self, child: Any):
        self.sum = Cell(child._sum)
        self.buckets = [Cell(b) for b in child._buckets]
        self.bounds = list(child._upper_bounds)


#: series changed since the last flush (written at the end of the loop iteration)
_dirty: list[Series] = []
_loop: list[Any] = []


def flush() -> None:
    """Write every changed value to the metric files. Runs once per event-loop iteration
    in which requests were logged (a loaded worker logs ~20 requests per iteration, so the
    writes are shared) and before a scrape renders."""
    pack = _PACK
    for series in _dirty:
        series.dirty = False
        for c in series.cells:
            v = c.v
            if v != c.w:
                c.w = v
                pack(c.file._m, c.pos, v, 0.0)
    _dirty.clear()


def _schedule() -> None:
    if not _loop:
        import gevent
        _loop.append(gevent.get_hub().loop)
    _loop[0].run_callback(flush)


class Series:
    """Every value one request of a (route, status, node, consumer) updates, added up by
    :meth:`record` (the per-request work of the prometheus plugin) and written to the
    files by :func:`flush` at the end of the loop iteration."""

    __slots__ = ("status", "request", "upstream", "apisix", "ingress", "egress", "cells",
                 "dirty")

    def __init__(self, status: Cell, request: Hist, upstream: Hist | None, apisix: Hist,
                 ingress: Cell, egress: Cell):
        self.status = status
        self.request = request
        self.upstream = upstream
        self.apisix = apisix
        self.ingress = ingress
        self.egress = egress
        cells = [status, ingress, egress]
        for h in (request, upstream, apisix):
            if h is not None:
                cells.append(h.sum)
                cells += h.buckets
        self.cells = tuple(cells)
        self.dirty = False

    def record(self, latency: float, upstream: float | None, ingress: int,
               egress: int) -> None:
        self.status.v += 1.0
        h = self.request
        h.sum.v += latency
        h.buckets[bisect_left(h.bounds, latency)].v += 1.0
        if upstream is not None:
            h = self.upstream
            h.sum.v += upstream
            h.buckets[bisect_left(h.bounds, upstream)].v += 1.0
            latency -= upstream
            if latency < 0.0:
                latency = 0.0
        h = self.apisix
        h.sum.v += latency
        h.buckets[bisect_left(h.bounds, latency)].v += 1.0
        self.ingress.v += ingress
        if egress:
            self.egress.v += egress
        if not self.dirty:
            self.dirty = True
            _dirty.append(self)
            if len(_dirty) == 1:
                _schedule()


class Metrics:
    """The metric objects of this worker (created on first use, after the fork)."""

    def __init__(self) -> None:
        self.ready = False
        self.cache: dict[Any, Any] = {}

    def setup(self, conf: dict[str, Any]) -> None:
        if self.ready:
            return
        from prometheus_client import Counter, Gauge, Histogram
        a = attr(conf)
        prefix = a.get("metric_prefix") or "apisix_"
        self.prefix = prefix
        buckets = a.get("default_buckets") or DEFAULT_BUCKETS
        self.status = Counter(prefix + "http_status",
                              "HTTP status codes per service in APISIX", STATUS_LABELS,
                              registry=None)
        self.latency = Histogram(prefix + "http_latency",
                                 "HTTP request latency in milliseconds per service in APISIX",
                                 LATENCY_LABELS, buckets=buckets, registry=None)
        self.bandwidth = Counter(prefix + "bandwidth",
                                 "Total bandwidth in bytes consumed per service in APISIX",
                                 BANDWIDTH_LABELS, registry=None)
        self.connections = Gauge(prefix + "nginx_http_current_connections",
                                 "Number of HTTP connections", ("state",), registry=None,
                                 multiprocess_mode="livesum")
        self.requests = Gauge(prefix + "http_requests_total",
                              "The total number of client requests since APISIX started",
                              registry=None, multiprocess_mode="livesum")
        self.conn_children = [self.connections.labels(s) for s in CONNECTION_STATES]
        self.ready = True

    # ---- the log phase
    def children(self, key: tuple, labels: tuple,
                 disabled: dict[str, frozenset] | None = None) -> tuple:
        """(status child, request/upstream/apisix latency children, ingress/egress
        bandwidth children) for ``labels`` = (code, route, matched_uri, matched_host,
        service, consumer, node, response_source). ``disabled``: metric name (http_status,
        http_latency, bandwidth) -> labels sent as "" (prometheus metadata)."""
        cache = self.cache
        if len(cache) >= CACHE_LIMIT:
            cache.clear()
        code, route, muri, mhost, service, consumer, node, source = labels
        rest = (route, service, consumer, node, "traditional_http", "", "")
        status = (code, route, muri, mhost, service, consumer, node,
                  "traditional_http", "", "", source)
        lat_rest = bw_rest = rest
        if disabled:
            status = _blank(status, STATUS_LABELS, disabled.get("http_status"))
            lat_rest = _blank(rest, LATENCY_LABELS[1:], disabled.get("http_latency"))
            bw_rest = _blank(rest, BANDWIDTH_LABELS[1:], disabled.get("bandwidth"))
        lat = self.latency
        bw = self.bandwidth
        found = Series(
            Cell(self.status.labels(*status)._value),
            Hist(lat.labels("request", *lat_rest)),
            Hist(lat.labels("upstream", *lat_rest)) if node or source != "apisix" else None,
            Hist(lat.labels("apisix", *lat_rest)), Cell(bw.labels("ingress", *bw_rest)._value),
            Cell(bw.labels("egress", *bw_rest)._value))
        cache[key] = found
        return found

    # ---- node-wide gauges (the worker's tick)
    def tick(self, server: Any) -> None:
        if not self.ready:
            return
        clients = server.clients
        reading = writing = 0
        requests = getattr(server, "requests_done", 0)
        for c in clients:
            requests += c.nreq
            if c.active is not None:
                writing += 1
            elif c.pstate:
                reading += 1
        active = len(clients)
        accepted = getattr(server, "accepted", active)
        values = (active, accepted, accepted, reading, writing,
                  max(active - reading - writing, 0))
        for child, value in zip(self.conn_children, values):
            child.set(value)
        self.requests.set(requests)

    # ---- a scrape
    def render(self, conf: dict[str, Any]) -> bytes:
        from prometheus_client.metrics_core import GaugeMetricFamily
        from prometheus_client.multiprocess import MultiProcessCollector
        p = self.prefix if self.ready else (attr(conf).get("metric_prefix") or "apisix_")
        flush()     # this worker's latest values (the others flush at their loop's turn)
        out: list[str] = []
        _write(out, MultiProcessCollector(None).collect(), p)
        # computed now by the answering worker (not multiprocess values)
        from gateway import APISIX_VERSION
        now = []
        info = GaugeMetricFamily(p + "node_info", "Info of APISIX node",
                                 labels=("hostname", "version"))
        info.add_metric((socket.gethostname(), APISIX_VERSION), 1)
        now.append(info)
        reachable = _etcd_reachable(conf)
        if reachable is not None:
            now.append(GaugeMetricFamily(
                p + "etcd_reachable",
                "Config server etcd reachable from APISIX, 0 is unreachable", reachable))
        upstream = GaugeMetricFamily(p + "upstream_status",
                                     "Upstream status from health check",
                                     labels=("name", "ip", "port"))
        try:
            from gateway.worker import healthcheck
            for checker in healthcheck.status():
                for node in checker.get("nodes") or ():
                    upstream.add_metric(
                        (str(checker.get("name", "")), str(node.get("ip", "")),
                         str(node.get("port", ""))),
                        1 if node.get("status") in ("healthy", "mostly_healthy") else 0)
        except Exception as e:  # noqa: BLE001
            log.warning("prometheus: cannot read the health checkers: %s", e)
        now.append(upstream)
        _write(out, now, p)
        return "".join(out).encode()


#: label order as APISIX prints them (the multiprocess collector sorts them by name)
def _blank(values: tuple, names: tuple, off: Any) -> tuple:
    """``values`` (labelled by ``names``) with the labels in ``off`` set to ""."""
    if not off:
        return values
    return tuple("" if name in off else value for name, value in zip(names, values))


_ORDER = {"http_status": STATUS_LABELS, "http_latency": LATENCY_LABELS + ("le",),
          "bandwidth": BANDWIDTH_LABELS}


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if value == int(value) and abs(value) < 1e15:
        return "%d" % value
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _write(out: list[str], metrics: Any, prefix: str) -> None:
    """The text format as APISIX writes it: labels in APISIX's order, counters without
    a ``_total`` suffix, whole numbers without ``.0``."""
    for metric in metrics:
        name = metric.name
        if not metric.samples:
            continue
        order = _ORDER.get(name[len(prefix):]) if name.startswith(prefix) else None
        out.append("# HELP %s %s\n# TYPE %s %s\n" % (name, metric.documentation, name,
                                                  metric.type))
        lines = []
        for sample in metric.samples:
            sname = sample.name
            if metric.type == "counter":
                if sname.endswith("_created"):
                    continue
                sname = name
            labels = sample.labels
            keys = [k for k in order if k in labels] if order is not None else list(labels)
            if keys:
                text = ",".join('%s="%s"' % (k, _escape(str(labels[k])) if k != "le"
                                             else _number(float(labels[k])))
                                for k in keys)
                lines.append("%s{%s} %s\n" % (sname, text, _number(sample.value)))
            else:
                lines.append("%s %s\n" % (sname, _number(sample.value)))
        out.extend(lines)


def _etcd_reachable(conf: dict[str, Any]) -> int | None:
    """1/0 when the config comes from etcd (GET /version on its first host), else None."""
    from gateway import config
    try:
        if config.config_provider(conf) != "etcd":
            return None
        hosts = conf["deployment"]["etcd"].get("host") or ()
    except (KeyError, TypeError):
        return None
    import gevent.socket
    from urllib.parse import urlsplit
    for host in hosts:
        url = urlsplit(str(host))
        try:
            sock = gevent.socket.create_connection(
                (url.hostname, url.port or (443 if url.scheme == "https" else 2379)),
                timeout=1.0)
        except OSError:
            continue
        try:
            if url.scheme == "https":
                import gevent.ssl
                ctx = gevent.ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = gevent.ssl.CERT_NONE
                sock = ctx.wrap_socket(sock, server_hostname=url.hostname)
            sock.sendall(b"GET /version HTTP/1.0\r\nHost: %s\r\n\r\n"
                         % url.netloc.encode())
            head = sock.recv(64)
            if head.startswith(b"HTTP/1.") and head[9:12] == b"200":
                return 1
        except OSError:
            pass
        finally:
            sock.close()
    return 0


METRICS = Metrics()


class ExportServer:
    """``GET <export_uri>`` on the shared export listener (gevent WSGI, off the hot path)."""

    def __init__(self, sock: socket.socket, conf: dict[str, Any]):
        import gevent.pywsgi
        import gevent.socket

        from gateway import config

        self.conf = conf
        self.uri = attr(conf).get("export_uri") or "/apisix/prometheus/metrics"
        self.server_header = config.server_header(conf).decode()
        METRICS.setup(conf)

        class Handler(gevent.pywsgi.WSGIHandler):
            def log_request(self) -> None:
                pass

        gsock = gevent.socket.socket(sock.family, sock.type, fileno=sock.fileno())
        self.server = gevent.pywsgi.WSGIServer(gsock, self.app, handler_class=Handler,
                                               log=None, error_log=None)

    def app(self, environ: dict, start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") == self.uri and environ["REQUEST_METHOD"] == "GET":
            try:
                body, status = METRICS.render(self.conf), "200 OK"
            except Exception:  # noqa: BLE001 - never take the worker down
                log.exception("prometheus: failed to collect metrics")
                body = b'{"message":"An unexpected error occurred"}\n'
                status = "500 Internal Server Error"
        else:
            body, status = b"", "404 Not Found"
        start_response(status, [("Content-Type", "text/plain"),
                                ("Server", self.server_header),
                                ("Content-Length", str(len(body)))])
        return [body]

    def start(self) -> None:
        self.server.start()

    def stop(self, timeout: float = 1.0) -> None:
        self.server.stop(timeout=timeout)
