"""Build time of a 10,000-route table and match time of its last route.

    PYTHONPATH=. .venv/bin/python benchmark/router_table.py [N] [--no-freeze] [--json]

Prints the whole build (Table.build, non-cooperative), the longest stretch the event loop
is held during a cooperative build (between two yields), and per-match costs for the
last route of exact, prefix, host, parameter and vars tables. No thresholds: numbers only.
`--json` prints one JSON object instead (benchmark/bench.py runs it that way).
"""

from __future__ import annotations

import gc
import json
import sys
import time

import gevent

from gateway.core.ctxvars import RequestVars
from gateway.worker.table import Table

N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 10000
#: --no-freeze: leave the live table in the collected generations (full GC passes then
#: scan it during the next build and show up as loop stalls)
FREEZE = "--no-freeze" not in sys.argv
AS_JSON = "--json" in sys.argv
UP = {"nodes": {"127.0.0.1:1980": 1}}


def objects(make) -> dict:
    return {"/apisix/routes/%d" % i: dict(make(i), id=str(i), upstream=UP) for i in range(N)}


def build_stats(objs: dict, conf: dict) -> tuple[float, float, Table]:
    t0 = time.perf_counter()
    table = Table.build(objs, conf, cooperative=False)
    whole = time.perf_counter() - t0
    if FREEZE:
        gc.freeze()  # as the worker does after its first table (DESIGN.md)
    # cooperative: measure the longest gap between the ticker's wakeups
    gaps: list[float] = []
    done = []

    def ticker() -> None:
        last = time.perf_counter()
        while not done:
            gevent.sleep(0)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    g = gevent.spawn(ticker)
    gevent.sleep(0)
    Table.build(objs, conf, cooperative=True)
    done.append(1)
    g.join()
    return whole, max(gaps), table


def per_match(fn, n: int = 100000) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


CASES = [
    ("exact", lambda i: {"uri": "/api/v1/resource%d" % i}, {}, b"", b"/api/v1/resource%d"),
    ("prefix", lambda i: {"uri": "/svc%d/*" % i}, {}, b"", b"/svc%d/some/path"),
    ("host+exact", lambda i: {"uri": "/x", "host": "h%d.example.com" % i}, {},
     b"h%d.example.com", b"/x"),
    ("param", lambda i: {"uri": "/u%d/:id/*rest" % i},
     {"apisix": {"router": {"http": "radixtree_uri_with_parameter"}}}, b"", b"/u%d/7/a/b"),
    ("vars", lambda i: {"uri": "/v%d" % i, "vars": [["arg_k", "==", str(i)]]}, {}, b"",
     b"/v%d?k=%d"),
    # worst case, linear by nature (as in APISIX): every route on one path, told apart
    # only by their vars
    ("1path+vars", lambda i: {"uri": "/v", "vars": [["arg_k", "==", str(i)]]}, {}, b"",
     b"/v?k=%d"),
]

results: dict[str, dict] = {}
for name, make, conf, host_t, path_t in CASES:
    objs = objects(make)
    whole, stall, table = build_stats(objs, conf)
    last = N - 1
    host = host_t.replace(b"%d", b"%d" % last) if b"%d" in host_t else host_t
    url = path_t.replace(b"%d", b"%d" % last)
    path = url.split(b"?")[0]
    router = table.router

    def match(router=router, host=host, path=path, url=url):
        return router.match_host(b"GET", host, path,
                                 RequestVars(b"GET", path, url, host, b"127.0.0.1"))
    route = match()
    assert route is not None and route.id == str(last), (name, route)
    cost = per_match(match, 200 if name == "1path+vars" else 100000)
    results[name] = {"routes": N, "build_ms": round(whole * 1e3, 1),
                     "max_loop_stall_ms": round(stall * 1e3, 1),
                     "match_last_us": round(cost * 1e6, 2)}
    if AS_JSON:
        continue
    print("%-11s %d routes: build %6.1f ms, longest loop stall (cooperative) %5.1f ms, "
          "match last route %6.2f us" % (name, N, whole * 1e3, stall * 1e3, cost * 1e6))

if AS_JSON:
    print(json.dumps(results))
