"""Health state (gateway.worker.healthcheck) and the DNS cache (gateway.worker.resolver):
counters and statuses as lua-resty-healthcheck, the Control API shape, checker reuse across
table builds, background re-resolution."""

from __future__ import annotations

import socket

from gateway.worker import healthcheck as hc
from gateway.worker.resolver import DnsCache
from gateway.worker.table import Table


class N:
    def __init__(self, port: int, ip: str = "127.0.0.1"):
        self.name = b"%s:%d" % (ip.encode(), port)
        self.addr = (ip, port)
        self.family = socket.AF_INET
        self.port = port


def health(checks: dict, *nodes: N) -> hc.Health:
    return hc.Registry().health("/apisix/upstreams/1", checks, list(nodes))


def node_status(h: hc.Health, n: N) -> dict:
    return next(x for x in h.info()["nodes"] if x["port"] == n.port)


def test_passive_failures_mark_a_node_unhealthy_and_successes_bring_it_back():
    a, b = N(1980), N(1981)
    h = health({"active": {"healthy": {"successes": 2}},
                "passive": {"unhealthy": {"http_failures": 2, "http_statuses": [500]}}}, a, b)
    assert h.bad == set()
    h.report_http_status(b.name, 500)
    assert node_status(h, b)["status"] == "mostly_healthy" and h.bad == set()
    h.report_http_status(b.name, 404)          # in neither list: ignored
    h.report_http_status(b.name, 500)
    st = node_status(h, b)
    assert st["status"] == "unhealthy" and h.bad == {b.name}
    assert st["counter"] == {"success": 0, "http_failure": 2, "tcp_failure": 0,
                             "timeout_failure": 0}
    h.report_http_status(b.name, 500)          # already unhealthy: not counted
    assert node_status(h, b)["counter"]["http_failure"] == 2
    h.report_http_status(b.name, 200, active=True)
    st = node_status(h, b)
    assert st["status"] == "mostly_unhealthy" and h.bad == {b.name}
    assert st["counter"]["http_failure"] == 0 and st["counter"]["success"] == 1
    h.report_success(b.name, active=True)
    assert node_status(h, b)["status"] == "healthy" and h.bad == set()
    assert node_status(h, a)["status"] == "healthy"


def test_defaults_tcp_and_timeout_thresholds_and_disabled_counters():
    n = N(1979)
    h = health({"active": {}, "passive": {"unhealthy": {"tcp_failures": 0}}}, n)
    h.report_tcp_failure(n.name)               # passive tcp_failures 0: disabled
    assert node_status(h, n)["counter"]["tcp_failure"] == 0
    h.report_tcp_failure(n.name, active=True)  # active default: 2
    h.report_tcp_failure(n.name, active=True)
    assert h.bad == {n.name}
    t = N(1978)
    h = health({"active": {}}, t)
    for _ in range(2):
        h.report_timeout(t.name, active=True)
    assert h.bad == set()                      # active timeouts default: 3
    h.report_timeout(t.name, active=True)
    assert h.bad == {t.name}
    assert h.passive is None
    h.report_http_status(t.name, 500)          # no passive checks: nothing counted
    assert node_status(h, t)["counter"]["http_failure"] == 0


def test_passive_default_statuses():
    n = N(1980)
    h = health({"active": {}, "passive": {}}, n)
    for _ in range(4):
        h.report_http_status(n.name, 503)
    assert h.bad == set()                      # http_failures default 5
    h.report_http_status(n.name, 502)          # not in the default unhealthy list
    assert h.bad == set()
    h.report_http_status(n.name, 429)
    assert h.bad == {n.name}


def test_status_shape_and_registry_keeps_checkers_across_builds():
    registry = hc.Registry()
    a = N(1980)
    checks = {"active": {"type": "tcp", "host": "foo.com"}}
    first = registry.health("/apisix/routes/1", checks, [a])
    registry.activate([first])
    try:
        same = registry.health("/apisix/routes/1", checks, [N(1980)])
        assert same is first                    # checks and nodes unchanged: kept
        other = registry.health("/apisix/routes/1", checks, [N(1981)])
        assert other is not first
        assert registry.status() == [{
            "name": "/apisix/routes/1", "type": "tcp",
            "nodes": [{"ip": "127.0.0.1", "port": 1980, "hostname": "foo.com",
                       "status": "healthy",
                       "counter": {"success": 0, "http_failure": 0, "tcp_failure": 0,
                                   "timeout_failure": 0}}]}]
        assert registry.status_of("routes", "1")["name"] == "/apisix/routes/1"
        assert registry.status_of("upstreams", "1") is None
        assert first.greenlet is not None
        registry.activate([other])
        assert first.greenlet is None and other.greenlet is not None
    finally:
        registry.stop()
    assert other.greenlet is None
    assert registry.health("/apisix/routes/1", None, [a]) is None


def test_table_build_wires_health_retries_and_reuses_state():
    objects = {
        "/apisix/upstreams/u": {"id": "u", "nodes": {"127.0.0.1:1980": 1, "127.0.0.1:1981": 1,
                                                      "127.0.0.1:1982": 0},
                                "retry_timeout": 2.5,
                                "checks": {"active": {"type": "tcp"}}},
        "/apisix/routes/1": {"id": "1", "uri": "/a", "upstream_id": "u"},
        "/apisix/routes/2": {"id": "2", "uri": "/b",
                             "upstream": {"retries": 0, "nodes": {"127.0.0.1:1980": 1}}},
    }
    table = Table.build(objects, {}, cooperative=False)
    up = table.upstreams["u"]
    assert up.retries == 2                      # #nodes - 1, weight-0 node included
    assert up.retry_timeout == 2.5
    assert up.health is not None and up.balancer.health is up.health
    inline = table.routes[1].data.upstream if table.routes[1].id == "2" \
        else table.routes[0].data.upstream
    assert inline.retries == 0 and inline.health is None and inline.balancer.health is None
    hc.activate_table(table)
    try:
        again = Table.build(objects, {}, cooperative=False)
        assert again.upstreams["u"].health is up.health
    finally:
        hc.REGISTRY.stop()


def test_dns_cache_keeps_stale_answers_refreshes_and_reports_changes():
    answers = {"svc.test": ("10.0.0.1", socket.AF_INET)}
    now = [100.0]

    class FakeDns(DnsCache):
        def _resolve(self, name):
            return (answers[name], "") if name in answers else (None, "no address")

    cache = FakeDns(valid=30)
    cache.clock = lambda: now[0]
    assert cache.lookup("svc.test") == ("10.0.0.1", socket.AF_INET)
    assert cache.lookup("gone.test") is None
    answers["svc.test"] = ("10.0.0.2", socket.AF_INET)
    assert cache.lookup("svc.test")[0] == "10.0.0.1"  # cached
    assert cache.refresh() is False                   # nothing expired yet
    now[0] += 31
    assert cache.lookup("svc.test")[0] == "10.0.0.1"  # stale: still served, not blocking
    assert cache.refresh() is True
    assert cache.lookup("svc.test")[0] == "10.0.0.2"
    del answers["svc.test"]                            # DNS failure: keep the last answer
    answers["gone.test"] = ("10.0.0.9", socket.AF_INET)
    now[0] += 31
    assert cache.refresh() is True                     # gone.test resolves now
    assert cache.lookup("svc.test")[0] == "10.0.0.2"
    assert cache.lookup("gone.test")[0] == "10.0.0.9"
    cache.retain(["svc.test"])
    assert set(cache.entries) == {"svc.test"}


class _OneShotServer:
    """A loopback server (a real thread) answering each connection with ``reply``,
    optionally over TLS; keeps what it received."""

    def __init__(self, reply: bytes, tls: bool = False):
        import ssl
        import threading
        self.reply = reply
        self.received: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain("t/certs/test.crt", "t/certs/test.key")
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                if self.ctx is not None:
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                data = b""
                while b"\r\n\r\n" not in data:
                    piece = conn.recv(4096)
                    if not piece:
                        break
                    data += piece
                self.received.append(data)
                conn.sendall(self.reply)
            except OSError:
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self.sock.close()


def _unhealthy(h: hc.Health, n: N) -> None:
    target = h.targets[n.name]
    target.status = hc.UNHEALTHY
    h.bad.add(n.name)


def test_active_probes_http_https_tcp_against_real_sockets():
    ok = _OneShotServer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    bad = _OneShotServer(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")
    tls = _OneShotServer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", tls=True)
    try:
        n = N(ok.port)
        h = health({"active": {"http_path": "/check", "host": "foo.com",
                               "req_headers": ["X-A: 1"]}}, n)
        _unhealthy(h, n)
        h._probe(h.targets[n.name])
        assert node_status(h, n)["counter"]["success"] == 1
        assert ok.received[0].startswith(b"GET /check HTTP/1.0\r\nHost: foo.com\r\nX-A: 1\r\n")

        b = N(bad.port)
        h = health({"active": {}}, b)
        h._probe(h.targets[b.name])
        st = node_status(h, b)
        assert st["status"] == "mostly_healthy" and st["counter"]["http_failure"] == 1

        t = N(tls.port)
        h = health({"active": {"type": "https", "https_verify_certificate": False}}, t)
        _unhealthy(h, t)
        h._probe(h.targets[t.name])
        assert node_status(h, t)["counter"]["success"] == 1

        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))      # bound, not listening: connections are refused
        d = N(dead.getsockname()[1])
        h = health({"active": {"type": "tcp"}}, d)
        h._probe(h.targets[d.name])
        assert node_status(h, d)["counter"]["tcp_failure"] == 1
        dead.close()
        h = health({"active": {"type": "tcp"}}, n)
        _unhealthy(h, n)
        h._probe(h.targets[n.name])
        assert node_status(h, n)["counter"]["success"] == 1
    finally:
        ok.close()
        bad.close()
        tls.close()
