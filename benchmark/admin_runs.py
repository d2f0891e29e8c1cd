"""The Admin API scenarios: config churn under load, and Admin PUT → every worker serving.

They need the traditional role (etcd + Admin API), so they run against a gateway of their own
with a throw-away etcd. Whether the Admin API is there is found out at run time (one GET on the
admin listener), not from the source tree: a scenario is skipped with the reason until the
gateway answers.

A client cannot choose which worker accepts its connection, so "every worker serves the
change" is observed from outside: after the PUT, batches of fresh connections (opened together,
so that the accepting workers are spread) are sent until CONSECUTIVE batches in a row all see
the new route; the time is taken at the start of that streak.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import statistics
import threading
import time
import urllib.request

KEY = "bench-admin-key"
#: the churn scenario's write rate (one every 10 ms), spread over WRITERS keep-alive clients
#: so that a slow answer does not lower the rate
CHURN_INTERVAL, WRITERS = 0.010, 4
#: fresh connections per check, and checks in a row that must all see the change
BATCH, CONSECUTIVE = 8, 3
#: puts per etcd transaction when preloading routes (etcd's default --max-txn-ops)
ETCD_TXN_OPS = 128
#: give up on one write after this long
SERVE_TIMEOUT = 5.0


def config(port: int, admin_port: int, etcd_url: str, workers: int) -> dict:
    return {
        "apisix": {"node_listen": [{"ip": "127.0.0.1", "port": port}],
                   "enable_admin": True, "enable_control": False, "enable_ipv6": False,
                   "ssl": {"enable": False}},
        "deployment": {
            "role": "traditional",
            "role_traditional": {"config_provider": "etcd"},
            "admin": {"admin_key": [{"name": "admin", "key": KEY, "role": "admin"}],
                      "allow_admin": ["127.0.0.0/24"], "enable_admin_ui": False,
                      "admin_listen": {"ip": "127.0.0.1", "port": admin_port}},
            "etcd": {"host": [etcd_url], "prefix": "/apisix"},
        },
        "nginx_config": {"worker_processes": workers, "error_log_level": "warn",
                         "http": {"enable_access_log": False}},
        "plugin_attr": {"prometheus": {"enable_export_server": False}},
    }


class Admin:
    """A keep-alive Admin API client (reconnects after an error)."""

    def __init__(self, port: int):
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"X-API-KEY": KEY, "Content-Type": "application/json"}
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                self.conn.request(method, "/apisix/admin" + path, body=data, headers=headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def route_body(uri: str, backend: int) -> dict:
    return {"uri": uri, "upstream": {"type": "roundrobin",
                                     "nodes": {"127.0.0.1:%d" % backend: 1}}}


def setup(admin_port: int, backend: int) -> str:
    """Probe the Admin API and create the /hello route; '' or why the scenarios skip."""
    admin = Admin(admin_port)
    try:
        status, body = admin.call("GET", "/routes")
        if status != 200:
            return "needs the Admin API (GET /apisix/admin/routes answered %d %r)" % (
                status, body[:120])
        status, body = admin.call("PUT", "/routes/hello", route_body("/hello", backend))
        if status not in (200, 201):
            return "needs Admin PUT (answered %d %r)" % (status, body[:120])
        return ""
    except OSError as e:
        return "needs the Admin API served by the gateway (admin listener: %s)" % e
    finally:
        admin.close()


class Churn:
    """An Admin write every CHURN_INTERVAL while wrk runs (a context manager): WRITERS
    threads, each writing its own route every WRITERS * CHURN_INTERVAL, staggered."""

    def __init__(self, admin_port: int, backend: int):
        self.admin_port, self.backend = admin_port, backend
        self.stop = threading.Event()
        self.ok = [0] * WRITERS
        self.failed = [0] * WRITERS
        self.threads = [threading.Thread(target=self.run, args=(k,), daemon=True)
                        for k in range(WRITERS)]
        self.elapsed = 0.0

    def run(self, k: int) -> None:
        admin = Admin(self.admin_port)
        period = CHURN_INTERVAL * WRITERS
        next_at = self.t0 + k * CHURN_INTERVAL
        i = 0
        try:
            while not self.stop.wait(max(0.0, next_at - time.monotonic())):
                i += 1
                try:
                    status, _ = admin.call("PUT", "/routes/churn-%d" % k,
                                           route_body("/churn/%d/%d" % (k, i), self.backend))
                    if status in (200, 201):
                        self.ok[k] += 1
                    else:
                        self.failed[k] += 1
                except OSError:
                    self.failed[k] += 1
                next_at += period
        finally:
            admin.close()

    def __enter__(self) -> Churn:
        self.t0 = time.monotonic()
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(15)
        self.elapsed = time.monotonic() - self.t0

    def result(self) -> dict:
        ok, failed = sum(self.ok), sum(self.failed)
        return {"admin_writes_ok": ok, "admin_writes_failed": failed,
                "admin_writes_per_s": (ok + failed) / self.elapsed if self.elapsed else None}


def batch_sees(port: int, path: str) -> bool:
    """BATCH fresh connections, all connected before any request is sent: all answer 200?"""
    socks = []
    try:
        for _ in range(BATCH):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        req = ("GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n" % path).encode()
        for s in socks:
            s.sendall(req)
        ok = True
        for s in socks:
            head = s.recv(64)
            ok = ok and head.startswith(b"HTTP/1.1 200")
        return ok
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def write_cost(admin_port: int, backend: int, pids: list[int], writes: int = 50) -> dict:
    """Gateway CPU (master + workers, from /proc) per Admin write, with no traffic."""
    from procs import CLK_TCK, cpu_ticks
    admin = Admin(admin_port)
    try:
        before = [sum(cpu_ticks([p])) for p in pids]
        t0 = time.perf_counter()
        for i in range(writes):
            admin.call("PUT", "/routes/cost", route_body("/cost/%d" % i, backend))
        wall = time.perf_counter() - t0
        after = [sum(cpu_ticks([p])) for p in pids]
    finally:
        admin.close()
    per = [(a - b) / CLK_TCK / writes * 1e3 for a, b in zip(after, before)]
    return {"writes": writes, "master_cpu_ms": round(per[0], 2),
            "worker_cpu_ms": [round(x, 2) for x in per[1:]],
            "wall_ms": round(wall / writes * 1e3, 2)}


def preload_routes(etcd_url: str, prefix: str, count: int, port: int, backend: int) -> float:
    """Write ``count`` exact routes straight into etcd (transactions of ETCD_TXN_OPS puts,
    as the Admin API would store them), then wait until every worker serves the last one:
    the Admin write scenario again, with a big table. Seconds taken."""
    t0 = time.monotonic()
    now = int(time.time())
    for start in range(0, count, ETCD_TXN_OPS):
        ops = []
        for i in range(start, min(count, start + ETCD_TXN_OPS)):
            rid = "big-%05d" % i
            value = dict(route_body("/big/%d/x" % i, backend), id=rid, create_time=now,
                         update_time=now)
            ops.append({"requestPut": {
                "key": base64.b64encode(("%s/routes/%s" % (prefix, rid)).encode()).decode(),
                "value": base64.b64encode(json.dumps(value).encode()).decode()}})
        req = urllib.request.Request(etcd_url + "/v3/kv/txn",
                                     data=json.dumps({"success": ops}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()
    last = "/big/%d/x" % (count - 1)
    deadline = time.monotonic() + 120
    while not batch_sees(port, last):
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway did not serve %d preloaded routes in 120 s" % count)
        time.sleep(0.2)
    return time.monotonic() - t0


def put_to_serving(port: int, admin_port: int, backend: int, writes: int) -> dict:
    """Time from sending an Admin PUT to every worker serving it, over `writes` writes."""
    admin = Admin(admin_port)
    put_ms, serve_ms, failed = [], [], 0
    try:
        for i in range(writes):
            path = "/probe/%d" % i
            t0 = time.perf_counter()
            status, _ = admin.call("PUT", "/routes/probe", route_body(path, backend))
            put_ms.append((time.perf_counter() - t0) * 1e3)
            if status not in (200, 201):
                failed += 1
                continue
            streak, streak_start = 0, None
            while streak < CONSECUTIVE and time.perf_counter() - t0 < SERVE_TIMEOUT:
                t = time.perf_counter()
                if batch_sees(port, path):
                    streak, streak_start = streak + 1, streak_start or t
                else:
                    streak, streak_start = 0, None
            if streak < CONSECUTIVE:
                failed += 1
            else:
                serve_ms.append((streak_start - t0) * 1e3)
    finally:
        admin.close()

    def pct(vals: list[float], q: float) -> float | None:
        if not vals:
            return None
        vals = sorted(vals)
        return vals[min(len(vals) - 1, int(round(q * (len(vals) - 1))))]

    return {"writes": writes, "failed": failed,
            "admin_answer_ms": {"median": statistics.median(put_ms) if put_ms else None,
                                "p99": pct(put_ms, 0.99)},
            "all_workers_serving_ms": {"median": statistics.median(serve_ms)
                                       if serve_ms else None, "p99": pct(serve_ms, 0.99)},
            "method": "%d fresh connections per check, %d checks in a row" % (BATCH,
                                                                            CONSECUTIVE)}
