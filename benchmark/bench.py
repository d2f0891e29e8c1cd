"""The gateway against nginx, side by side on this machine: `make bench` (benchmark/run.sh).

Why it is built this way:

* **Per CPU-second, not per wall-second.** wrk and the proxy share two cores; raw requests/s
  says as much about wrk as about the proxy. So each proxy (master + workers, resp. nginx
  master + worker) is pinned alone to one CPU, wrk and the backend to the other, and the
  result is requests divided by the utime+stime the proxy processes spent during the run
  (/proc/<pid>/stat before and after).
* **Interleaved rounds.** This VM's speed drifts by tens of percent over minutes, and its
  noise comes in bursts of seconds. Every round measures nginx and then every gateway
  scenario; the ratio to nginx is taken within a round, then the median over rounds is
  reported. Many short rounds (6 of 4 s) beat a few long ones (3 of 10 s) in the same time:
  a burst spoils one round, and the median drops it.
* **Best rounds too.** A busy host only ever adds cost, and here it adds more to nginx's
  per-request cost than to the gateway's (session 8: nginx 21.6 -> 34.2 us between rounds of
  one run, the trivial route 31.6 -> 41.9), so noisy rounds flatter the per-round ratio (0.65
  in the quietest round, 0.89 in a noisy one). "best × nginx" sets each side's cheapest round
  against the other's: no noisy round of either side raises it, but it is only as good as
  the quietest round nginx got, so the report prints that round's cost too (18-19 us per
  request in a quiet hour on this VM; more means no round of the run was quiet, and both
  ratios read high). In a quiet hour the two ratios agree.
* **The reference** is nginx as a keep-alive reverse proxy (1 worker) to the same backend: an
  nginx `return 200 "hello"` (and a 1 MB static file) on loopback, all from temp prefixes of
  our own, never the system's nginx service.
* **Everything it starts is stopped by pid** (try/finally, also on Ctrl-C and SIGTERM).

Scenarios needing parts of the gateway that are not built yet are listed with a
"skipped: needs ..." reason, so the table shows what is not measured.

Settings (environment): BENCH_DURATION (4s, each c50 run), BENCH_LAT_DURATION (4s, each c1
run), BENCH_WARMUP (1s, before each run, not measured), BENCH_ROUNDS (6), BENCH_CONNS (50),
BENCH_ROUTES (10000), BENCH_PORT (18080, first of the ports used), BENCH_PROXY_CPU (1),
BENCH_CLIENT_CPU (0), BENCH_MAX_SECONDS (570: no new round starts past it), BENCH_ONLY (comma
list of scenario names), BENCH_KEEP=1 (keep the temp prefixes and their logs),
BENCH_ADMIN_WRITES (100: Admin PUTs timed until every worker serves them; once with the Admin
gateway's few routes, once more with BENCH_ROUTES routes written straight into its etcd).

    benchmark/run.sh [--out FILE]      # default benchmark/results/latest.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import admin_runs
from procs import CLK_TCK, Etcd, Gateway, Nginx, Target, cpu_ticks, rss_mb

REPO = Path(__file__).resolve().parent.parent
BIG = 1 << 20                     #: size of the large response body
HELLO = b"hello"
PLUGIN_MODULES = ("key_auth", "limit_count", "proxy_rewrite", "prometheus")
API_KEY = "bench-key"


def env_duration(name: str, default: str) -> float:
    text = os.environ.get(name, default).strip()
    for unit, mult in (("ms", 1e-3), ("s", 1.0), ("m", 60.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * mult
    return float(text)


@dataclass
class Settings:
    duration: float = env_duration("BENCH_DURATION", "4s")
    lat_duration: float = env_duration("BENCH_LAT_DURATION", "4s")
    warmup: float = env_duration("BENCH_WARMUP", "1s")
    rounds: int = int(os.environ.get("BENCH_ROUNDS", "6"))
    conns: int = int(os.environ.get("BENCH_CONNS", "50"))
    routes: int = int(os.environ.get("BENCH_ROUTES", "10000"))
    port: int = int(os.environ.get("BENCH_PORT", "18080"))
    proxy_cpu: int = int(os.environ.get("BENCH_PROXY_CPU", "1"))
    client_cpu: int = int(os.environ.get("BENCH_CLIENT_CPU", "0"))
    max_seconds: float = env_duration("BENCH_MAX_SECONDS", "570")
    only: set = field(default_factory=lambda: {
        s for s in os.environ.get("BENCH_ONLY", "").split(",") if s})
    keep: bool = os.environ.get("BENCH_KEEP", "") == "1"
    admin_workers: int = int(os.environ.get("BENCH_ADMIN_WORKERS", "2"))
    admin_writes: int = int(os.environ.get("BENCH_ADMIN_WRITES", "100"))


# ------------------------------------------------------------------------------ configs
def nginx_conf(prefix: Path, body: str) -> str:
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return """%sworker_processes 1;
daemon off;
master_process on;
pid %s/nginx.pid;
error_log %s/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path %s/tmp_body;
    proxy_temp_path %s/tmp_proxy;
    fastcgi_temp_path %s/tmp_fcgi;
    uwsgi_temp_path %s/tmp_uwsgi;
    scgi_temp_path %s/tmp_scgi;
%s
}
""" % ((user,) + (prefix,) * 7 + (body,))


def backend_conf(prefix: Path, port: int) -> str:
    (prefix / "www").mkdir(parents=True, exist_ok=True)
    (prefix / "www" / "1m").write_bytes(b"x" * BIG)
    return nginx_conf(prefix, """
    server {
        listen 127.0.0.1:%d backlog=4096;
        location = /1m { root %s/www; default_type application/octet-stream; }
        location / { default_type text/plain; return 200 "hello"; }
    }""" % (port, prefix))


def nginx_proxy_conf(prefix: Path, port: int, backend: int) -> str:
    return nginx_conf(prefix, """
    upstream backend {
        server 127.0.0.1:%d;
        keepalive 128;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:%d backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_max_temp_file_size 0;
        }
    }""" % (backend, port))


def gateway_config(port: int, access_log: bool, plugins: list[str] | None = None) -> dict:
    """Standalone (yaml) data plane, one worker; every extra listener off, so several
    gateways of ours (and the test suite's) never compete for a port."""
    conf = {
        "apisix": {"node_listen": [{"ip": "127.0.0.1", "port": port}],
                   "enable_admin": False, "enable_control": False, "enable_ipv6": False,
                   "ssl": {"enable": False}},
        "deployment": {"role": "data_plane",
                       "role_data_plane": {"config_provider": "yaml"}},
        "nginx_config": {"worker_processes": 1, "error_log_level": "warn",
                         "http": {"enable_access_log": access_log}},
        "plugin_attr": {"prometheus": {"enable_export_server": False}},
    }
    if plugins is not None:
        conf["plugins"] = plugins
    return conf


def route(rid: str, uri: str, backend: int, plugins: dict | None = None) -> dict:
    r = {"id": rid, "uri": uri,
         "upstream": {"type": "roundrobin", "nodes": {"127.0.0.1:%d" % backend: 1}}}
    if plugins:
        r["plugins"] = plugins
    return r


def apisix_yaml(routes: list[dict], consumers: list[dict] | None = None) -> str:
    doc = {"routes": routes}
    if consumers:
        doc["consumers"] = consumers
    # one route per line keeps a 10k-route file readable and quick to parse
    lines = ["routes:"] + ["  - " + json.dumps(r) for r in doc["routes"]]
    if consumers:
        lines += ["consumers:"] + ["  - " + json.dumps(c) for c in consumers]
    return "\n".join(lines) + "\n#END\n"


# ------------------------------------------------------------------------------ wrk
WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
"""


def run_wrk(url: str, conns: int, seconds: float, cpu: int, lua: Path,
            headers: list[str]) -> dict:
    # wrk takes whole seconds
    cmd = ["taskset", "-c", str(cpu), "wrk", "-t1", "-c%d" % conns,
           "-d%ds" % max(1, round(seconds)),
           "--timeout", "5s", "--latency", "-s", str(lua)]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(url)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30,
                         stdin=subprocess.DEVNULL)
    for line in res.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            return json.loads(line[len("BENCHJSON "):])
    raise RuntimeError("wrk gave no result (exit %d): %s" % (res.returncode,
                                                           (res.stderr + res.stdout)[-500:]))


def get(port: int, path: str, headers: dict) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# ------------------------------------------------------------------------------ scenarios
@dataclass
class Scenario:
    name: str
    label: str
    target: str                 #: key into the targets dict ("" when skipped)
    path: str = "/hello"
    conns: int = 50
    latency_run: bool = False   #: a c1 run (BENCH_LAT_DURATION)
    headers: tuple = ()
    skipped: str = ""
    ref: str = ""               #: the nginx scenario this one is compared with
    rounds: list = field(default_factory=list)


def plugins_present() -> list[str]:
    return [m for m in PLUGIN_MODULES if not (REPO / "plugins" / (m + ".py")).exists()]


def build_scenarios(s: Settings) -> list[Scenario]:
    c = s.conns
    missing = plugins_present()
    plug_skip = ("needs " + ", ".join("plugins/%s.py" % m for m in missing)) if missing else ""
    hello = dict(path="/hello")
    big = dict(path="/1m")
    out = [
        Scenario("nginx", "nginx reverse proxy (reference)", "nginx", conns=c, **hello),
        Scenario("nginx-c1", "nginx reverse proxy (reference)", "nginx", conns=1,
                 latency_run=True, **hello),
        Scenario("nginx-1m", "nginx reverse proxy, 1 MB body", "nginx", conns=c, **big),
        Scenario("trivial", "gateway trivial route, access log off", "gw", conns=c,
                 ref="nginx", **hello),
        Scenario("trivial-c1", "gateway trivial route, access log off", "gw", conns=1,
                 latency_run=True, ref="nginx-c1", **hello),
        Scenario("trivial-1m", "gateway trivial route, 1 MB body", "gw", conns=c,
                 ref="nginx-1m", **big),
        Scenario("access-log", "gateway trivial route, access log on", "gw-log", conns=c,
                 ref="nginx", **hello),
        Scenario("routes-10k", "gateway %d routes, last one matched" % s.routes, "gw-10k",
                 conns=c, ref="nginx", path="/r%d" % (s.routes - 1)),
        Scenario("routes-10k-c1", "gateway %d routes, last one matched" % s.routes,
                 "gw-10k", conns=1, latency_run=True, ref="nginx-c1",
                 path="/r%d" % (s.routes - 1)),
        Scenario("plugins", "gateway key-auth+limit-count+proxy-rewrite+prometheus",
                 "gw-plugins", conns=c, ref="nginx", headers=("apikey: " + API_KEY,),
                 skipped=plug_skip, **hello),
        Scenario("admin-idle", "gateway, %d workers + etcd, no Admin writes"
                 % s.admin_workers, "gw-admin", conns=c, ref="nginx", **hello),
        Scenario("churn", "gateway, %d workers + etcd, an Admin write every 10 ms"
                 % s.admin_workers, "gw-admin", conns=c, ref="nginx", **hello),
    ]
    if s.only:
        refs = {y.ref for y in out if y.name in s.only}
        out = [x for x in out if x.name in s.only or x.name in refs]
    return out


def make_targets(s: Settings, tmp: Path, scenarios: list[Scenario]) -> dict[str, Target]:
    be, p = s.port, s.port
    wanted = {x.target for x in scenarios if not x.skipped}
    targets: dict[str, Target] = {
        "backend": Nginx("backend", tmp / "backend", backend_conf(tmp / "backend", be),
                         s.client_cpu)}
    hello_routes = [route("hello", "/hello", be), route("1m", "/1m", be)]
    if "nginx" in wanted:
        targets["nginx"] = Nginx("nginx", tmp / "nginx",
                                 nginx_proxy_conf(tmp / "nginx", p + 1, be), s.proxy_cpu)
    if "gw" in wanted:
        targets["gw"] = Gateway("gw", tmp / "gw", gateway_config(p + 2, False),
                                apisix_yaml(hello_routes), s.proxy_cpu)
    if "gw-log" in wanted:
        targets["gw-log"] = Gateway("gw-log", tmp / "gw-log", gateway_config(p + 3, True),
                                    apisix_yaml(hello_routes), s.proxy_cpu)
    if "gw-10k" in wanted:
        many = [route("r%d" % i, "/r%d" % i, be) for i in range(s.routes)]
        targets["gw-10k"] = Gateway("gw-10k", tmp / "gw-10k", gateway_config(p + 4, False),
                                    apisix_yaml(many), s.proxy_cpu)
    if "gw-plugins" in wanted:
        plugins = {"key-auth": {},
                   "limit-count": {"count": 1000000000, "time_window": 60,
                                   "rejected_code": 503},
                   "proxy-rewrite": {"headers": {"set": {"X-Bench": "1"}}},
                   "prometheus": {}}
        consumers = [{"username": "bench", "plugins": {"key-auth": {"key": API_KEY}}}]
        targets["gw-plugins"] = Gateway(
            "gw-plugins", tmp / "gw-plugins",
            gateway_config(p + 5, False, ["key-auth", "limit-count", "proxy-rewrite",
                                          "prometheus"]),
            apisix_yaml([route("hello", "/hello", be, plugins)], consumers), s.proxy_cpu)
    if "gw-admin" in wanted:
        etcd = Etcd("etcd", tmp / "etcd", p + ETCD_PORT, p + ETCD_PEER_PORT, s.client_cpu)
        targets["etcd"] = etcd
        targets["gw-admin"] = Gateway(
            "gw-admin", tmp / "gw-admin",
            admin_runs.config(p + 6, p + ADMIN_PORT, etcd.url, s.admin_workers), "",
            s.proxy_cpu)
    return targets


PORT_OF = {"backend": 0, "nginx": 1, "gw": 2, "gw-log": 3, "gw-10k": 4, "gw-plugins": 5,
           "gw-admin": 6}
ADMIN_PORT, ETCD_PORT, ETCD_PEER_PORT = 9, 7, 8     #: offsets from BENCH_PORT


def preflight(s: Settings, sc: Scenario) -> str:
    """One request through the scenario's target: 200 and the backend's body, or a reason."""
    port = s.port + PORT_OF[sc.target]
    headers = dict(h.split(": ", 1) for h in sc.headers)
    status, body = 0, b""
    ok = lambda: status == 200 and (body == HELLO if sc.path != "/1m" else len(body) == BIG)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            status, body = get(port, sc.path, headers)
        except OSError as e:
            status, body = 0, str(e).encode()
        if ok():
            return ""
        time.sleep(0.2)
    return "GET %s -> %s %r" % (sc.path, status, body[:200])


def measure(s: Settings, sc: Scenario, target: Target, lua: Path) -> dict:
    """One warm-up run, then one measured wrk run with the proxy's CPU time around it."""
    url = "http://127.0.0.1:%d%s" % (s.port + PORT_OF[sc.target], sc.path)
    secs = s.lat_duration if sc.latency_run else s.duration
    if s.warmup > 0:
        run_wrk(url, sc.conns, s.warmup, s.client_cpu, lua, list(sc.headers))
    churn = admin_runs.Churn(s.port + ADMIN_PORT, s.port) if sc.name == "churn" else None
    pids = target.pids()
    u0, s0 = cpu_ticks(pids)
    if churn is not None:
        with churn:
            w = run_wrk(url, sc.conns, secs, s.client_cpu, lua, list(sc.headers))
    else:
        w = run_wrk(url, sc.conns, secs, s.client_cpu, lua, list(sc.headers))
    u1, s1 = cpu_ticks(pids)
    after = target.pids()
    cpu_s = ((u1 - u0) + (s1 - s0)) / CLK_TCK
    reqs = w["requests"]
    wall = w["duration_us"] / 1e6
    errors = w["connect"] + w["read"] + w["write"] + w["status"] + w["timeout"]
    rss = [rss_mb(p) for p in after[1:]]
    return {
        "requests": reqs, "rps": reqs / wall if wall else 0.0,
        "cpu_s": cpu_s, "user_s": (u1 - u0) / CLK_TCK, "sys_s": (s1 - s0) / CLK_TCK,
        "rps_per_cpu": reqs / cpu_s if cpu_s > 0 else None,
        "cpu_us_per_req": cpu_s / reqs * 1e6 if reqs else None,
        "p50_ms": w["p50_us"] / 1e3, "p90_ms": w["p90_us"] / 1e3,
        "p99_ms": w["p99_us"] / 1e3, "max_ms": w["max_us"] / 1e3,
        "errors": errors, "wrk_errors": {k: w[k] for k in
                                         ("connect", "read", "write", "status", "timeout")},
        "worker_rss_mb": max((r for r in rss if r is not None), default=None),
        "processes_changed": sorted(pids) != sorted(after),
        **(churn.result() if churn is not None else {}),
    }


def median(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def summarize(scenarios: list[Scenario]) -> list[dict]:
    by_name = {x.name: x for x in scenarios}
    rows = []
    for sc in scenarios:
        row: dict = {"name": sc.name, "label": sc.label, "conns": sc.conns,
                     "body": "1 MB" if sc.path == "/1m" else "5 B"}
        if sc.skipped:
            row["skipped"] = sc.skipped
            rows.append(row)
            continue
        if not sc.rounds:
            row["skipped"] = "not measured"
            rows.append(row)
            continue
        for key in ("rps", "rps_per_cpu", "cpu_us_per_req", "p50_ms", "p99_ms",
                    "worker_rss_mb"):
            row[key] = median([r.get(key) for r in sc.rounds])
        row["errors"] = sum(r["errors"] for r in sc.rounds)
        row["processes_changed"] = any(r["processes_changed"] for r in sc.rounds)
        if "admin_writes_ok" in sc.rounds[0]:
            row["admin_writes_ok"] = sum(r["admin_writes_ok"] for r in sc.rounds)
            row["admin_writes_failed"] = sum(r["admin_writes_failed"] for r in sc.rounds)
            row["admin_writes_per_s"] = median([r.get("admin_writes_per_s")
                                                for r in sc.rounds])
        ref = by_name.get(sc.ref or sc.name)
        if ref is not None and ref.rounds:
            pairs = list(zip(sc.rounds, ref.rounds))
            row["x_nginx"] = median([a["rps_per_cpu"] / b["rps_per_cpu"]
                                     for a, b in pairs if a["rps_per_cpu"] and
                                     b["rps_per_cpu"]])
            row["p99_x_nginx"] = median([a["p99_ms"] / b["p99_ms"] for a, b in pairs
                                         if b["p99_ms"]])
            row["x_nginx_rounds"] = [round(a["rps_per_cpu"] / b["rps_per_cpu"], 3)
                                     for a, b in pairs if a["rps_per_cpu"] and
                                     b["rps_per_cpu"]]
            # (a round without CPU ticks has no rate: left out, as above)
            best = max((b["rps_per_cpu"] for b in ref.rounds if b["rps_per_cpu"]), default=0)
            mine = max((a["rps_per_cpu"] for a in sc.rounds if a["rps_per_cpu"]), default=0)
            row["x_nginx_best"] = mine / best if best and mine else None
        row["rounds"] = sc.rounds
        rows.append(row)
    return rows


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(rows: list[dict]) -> str:
    head = ("| scenario | conns | body | req/s | req/CPU-s | × nginx | rounds | best × nginx | "
            "CPU µs/req | p50 ms | p99 ms | p99 × nginx | worker RSS MB | errors |")
    out = [head, "|" + "---|" * 3 + "---:|" * 11]
    for r in rows:
        if "skipped" in r:
            out.append("| %s | %d | %s | skipped: %s |||||||||||" % (
                r["label"], r["conns"], r["body"], r["skipped"]))
            continue
        # the spread of the per-round ratios: how far one round of this hour can be off
        spread = r.get("x_nginx_rounds") or []
        spread = "%.2f-%.2f" % (min(spread), max(spread)) \
            if len(spread) > 1 and not r["name"].startswith("nginx") else "-"
        best = "-" if r["name"].startswith("nginx") else fmt(r.get("x_nginx_best"), ".2f")
        out.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d%s |" % (
            r["label"], r["conns"], r["body"], fmt(r["rps"], ",.0f"),
            fmt(r["rps_per_cpu"], ",.0f"), fmt(r.get("x_nginx"), ".2f"), spread, best,
            fmt(r["cpu_us_per_req"], ".1f"), fmt(r["p50_ms"], ".2f"), fmt(r["p99_ms"], ".2f"),
            fmt(r.get("p99_x_nginx"), ".2f"), fmt(r["worker_rss_mb"], ".1f"), r["errors"],
            ("" if "admin_writes_ok" not in r else " (Admin writes: %d ok, %d failed, "
             "%s/s)" % (r["admin_writes_ok"], r["admin_writes_failed"],
                        fmt(r.get("admin_writes_per_s"), ".0f"))) +
            (" ⚠ workers changed" if r["processes_changed"] else "")))
    return "\n".join(out)


def router_table_build(s: Settings) -> dict:
    """benchmark/router_table.py --json for the same route count (pure build, no sockets)."""
    py = REPO / ".venv" / "bin" / "python"
    res = subprocess.run([str(py if py.exists() else sys.executable),
                          str(REPO / "benchmark" / "router_table.py"), str(s.routes), "--json"],
                         capture_output=True, text=True, timeout=300, cwd=str(REPO),
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    if res.returncode != 0:
        return {"error": res.stderr.strip()[-500:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def git_describe() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--",
                                "gateway", "plugins"], capture_output=True,
                               text=True).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except OSError:
        return "?"


def start_targets(targets: dict[str, Target], scenarios: list[Scenario]) -> None:
    """Start everything; the backend and nginx must start, a gateway that does not only
    marks its scenarios broken (the reason goes into the table)."""
    for name, t in targets.items():
        print("starting %s ..." % name, flush=True)
        try:
            t.start()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            if name in ("backend", "nginx"):
                raise
            t.stop()
            for sc in scenarios:
                if sc.target == name or (name == "etcd" and sc.target == "gw-admin"):
                    sc.skipped = sc.skipped or "broken: %s" % str(e).strip()[:300]
            print("%s: %s" % (name, e), flush=True)


def run_rounds(s: Settings, scenarios: list[Scenario], targets: dict[str, Target],
               lua: Path, t_start: float) -> None:
    runnable = [x for x in scenarios if not x.skipped]
    round_s = None
    for rnd in range(s.rounds):
        if round_s is not None and time.monotonic() - t_start + round_s > s.max_seconds:
            print("time budget (%gs) reached after %d rounds" % (s.max_seconds, rnd))
            break
        t0 = time.monotonic()
        for sc in runnable:
            r = measure(s, sc, targets[sc.target], lua)
            sc.rounds.append(r)
            print("round %d %-14s %8.0f req/s %8s req/CPU-s  p99 %6.2f ms  errors %d"
                  % (rnd + 1, sc.name, r["rps"], fmt(r["rps_per_cpu"], ".0f"),
                     r["p99_ms"], r["errors"]), flush=True)
        round_s = time.monotonic() - t0


def meta(s: Settings) -> dict:
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": git_describe(), "host": platform.node(),
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "nginx": subprocess.run([shutil.which("nginx") or "/usr/sbin/nginx", "-v"],
                                capture_output=True, text=True).stderr.strip(),
        "settings": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(s).items()},
        "method": "wrk -t1 on CPU %d with the backend; each proxy alone on CPU %d; "
                  "req/CPU-s = requests / (utime+stime of proxy master+workers); "
                  "medians over rounds; x nginx = median of per-round ratios; best x nginx = "
                  "the scenario's cheapest round against nginx's cheapest"
                  % (s.client_cpu, s.proxy_cpu),
    }


def report(result: dict) -> str:
    lines = ["", table(result["scenarios"])]
    put = result["admin_put_to_all_workers"]
    if "skipped" in put:
        lines.append("| Admin PUT → all workers serving | | | skipped: %s |||||||||||"
                     % put["skipped"])
    else:
        a, w = put["admin_answer_ms"], put["all_workers_serving_ms"]
        lines.append("\nAdmin PUT → all workers serving (%d writes, %d failed): median %s ms, "
                     "p99 %s ms (Admin answer: median %s ms, p99 %s ms)" % (
                         put["writes"], put["failed"], fmt(w["median"], ".1f"),
                         fmt(w["p99"], ".1f"), fmt(a["median"], ".1f"), fmt(a["p99"], ".1f")))
        big = put.get("with_routes")
        if big:
            a, w = big["admin_answer_ms"], big["all_workers_serving_ms"]
            lines.append("Admin PUT → all workers serving with %d routes (%d writes, %d failed): "
                         "median %s ms, p99 %s ms (Admin answer: median %s ms, p99 %s ms)" % (
                             big["routes"], big["writes"], big["failed"],
                             fmt(w["median"], ".1f"), fmt(w["p99"], ".1f"),
                             fmt(a["median"], ".1f"), fmt(a["p99"], ".1f")))
        c = put.get("cpu_per_write")
        if c:
            lines.append("gateway CPU per Admin write (no traffic): master %.1f ms, workers %s ms"
                         % (c["master_cpu_ms"], " + ".join("%.1f" % x
                                                            for x in c["worker_cpu_ms"])))
    # the hour's noise floor: best × nginx is only as good as nginx's quietest round
    floor = [r["cpu_us_per_req"] for x in result["scenarios"] if x["name"] == "nginx"
             for r in x.get("rounds") or () if r["cpu_us_per_req"]]
    if floor:
        lines.append("\nnginx's cheapest round: %.1f µs of CPU per request (18-19 in the quiet "
                     "hours of the 2-vCPU VM this was built on; when it reads well above the "
                     "machine's quiet figure, no round was quiet and the ratios read high)"
                     % min(floor))
    ex = result["router_table_build"].get("exact")
    if ex:
        lines.append("\nroute table build, %d exact routes: %.0f ms (longest loop stall when "
                     "built cooperatively %.1f ms; match of the last route %.2f µs)"
                     % (ex["routes"], ex["build_ms"], ex["max_loop_stall_ms"],
                        ex["match_last_us"]))
    if result["gateway_start_s"]:
        lines.append("gateway start (CLI until workers serve): " + ", ".join(
            "%s %.2f s" % kv for kv in result["gateway_start_s"].items()))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(REPO / "benchmark" / "results" / "latest.json"))
    args = ap.parse_args()
    s = Settings()
    if (os.cpu_count() or 1) < 2:
        print("warning: one CPU: proxy and wrk share it", file=sys.stderr)
        s.proxy_cpu = s.client_cpu = 0
    for tool in ("wrk", "taskset", "nginx"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            print("%s not found (benchmark/run.sh installs it)" % tool, file=sys.stderr)
            return 2
    os.sched_setaffinity(0, {s.client_cpu})     # the churn thread and checks stay off the proxy

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)      # even where a shell started us with it ignored

    t_start = time.monotonic()
    scenarios = build_scenarios(s)
    tmp = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    lua = tmp / "report.lua"
    lua.write_text(WRK_LUA)
    targets: dict[str, Target] = {}
    try:
        print("router table build (%d routes) ..." % s.routes, flush=True)
        rt = router_table_build(s)
        targets = make_targets(s, tmp, scenarios)
        start_targets(targets, scenarios)
        admin = [x for x in scenarios if x.target == "gw-admin"]
        admin_skip = admin[0].skipped if admin else "not selected"
        if admin and not admin_skip:
            admin_skip = admin_runs.setup(s.port + ADMIN_PORT, s.port)
            if admin_skip:                    # no Admin API: free the CPU now
                targets["gw-admin"].stop()
                targets["etcd"].stop()
                for sc in admin:
                    sc.skipped = admin_skip
        start_s = {n: round(t.start_s, 2) for n, t in targets.items()
                   if isinstance(t, Gateway) and t.start_s is not None}
        for sc in scenarios:
            if not sc.skipped:
                why = preflight(s, sc)
                if why:
                    sc.skipped = "broken: " + why
                    print("%s: %s" % (sc.name, sc.skipped), flush=True)
        run_rounds(s, scenarios, targets, lua, t_start)
        if admin_skip:
            put = {"skipped": admin_skip}
        else:
            print("Admin PUT → all workers serving (%d writes) ..." % s.admin_writes, flush=True)
            put = admin_runs.put_to_serving(s.port + PORT_OF["gw-admin"],
                                            s.port + ADMIN_PORT, s.port, s.admin_writes)
            put["cpu_per_write"] = admin_runs.write_cost(s.port + ADMIN_PORT, s.port,
                                                         targets["gw-admin"].pids())
            print("Admin PUT → all workers serving, with %d routes (%d writes) ..."
                  % (s.routes, s.admin_writes), flush=True)
            took = admin_runs.preload_routes(targets["etcd"].url, "/apisix", s.routes,
                                             s.port + PORT_OF["gw-admin"], s.port)
            put["with_routes"] = dict(admin_runs.put_to_serving(
                s.port + PORT_OF["gw-admin"], s.port + ADMIN_PORT, s.port, s.admin_writes),
                routes=s.routes, preload_s=round(took, 1))
        result = {"meta": meta(s), "scenarios": summarize(scenarios),
                  "admin_put_to_all_workers": put, "router_table_build": rt,
                  "gateway_start_s": start_s}
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        print("\nbenchmark failed: %s (stopping everything)" % e, file=sys.stderr)
        return 1
    finally:
        for name in reversed(list(targets)):
            try:
                targets[name].stop()
            except BaseException as e:     # keep stopping the others
                print("stopping %s: %s" % (name, e), file=sys.stderr)
        if s.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(report(result))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print("wrote %s (%.0f s)" % (out, time.monotonic() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
