"""Compiling a config snapshot into the worker's table (gateway.worker.table)."""

from __future__ import annotations

import logging
import socket

import pytest

from gateway.core.log import log
from gateway.worker.table import Table, Timeouts, duration, setting, size

CONF = {"nginx_config": {"http": {"upstream": {"keepalive": 320, "keepalive_requests": 1000,
                                               "keepalive_timeout": "60s"}}}}


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append("[%s] %s" % (record.levelname, record.getMessage()))


@pytest.fixture
def errors():
    handler = Lines()
    log.addHandler(handler)
    old = log.level
    log.setLevel(logging.DEBUG)
    yield handler.lines
    log.removeHandler(handler)
    log.setLevel(old)


def target(table: Table, path: str, host: str | None = None, method: str = "GET"):
    route = table.router.match(method.encode(), host.encode() if host else None, path.encode())
    return route.data if route is not None else None


def test_empty_table_matches_nothing():
    assert Table.empty().router.match(b"GET", b"x", b"/") is None


def test_route_with_upstream_id_and_inline_upstream():
    t = Table.build({
        "/apisix/upstreams/u1": {"id": "u1", "nodes": {"127.0.0.1:1980": 1}},
        "/apisix/routes/1": {"id": "1", "uri": "/a", "upstream_id": "u1"},
        "/apisix/routes/2": {"id": "2", "uri": "/b", "upstream_id": "u1"},
        "/apisix/routes/3": {"id": "3", "uri": "/c",
                             "upstream": {"nodes": [{"host": "127.0.0.2", "port": 81,
                                                     "weight": 1}]}},
    }, CONF)
    a, b, c = target(t, "/a"), target(t, "/b"), target(t, "/c")
    assert a.route_id == "1" and a.error == 0
    assert a.upstream is b.upstream is t.upstreams["u1"]  # one object, shared state
    node = a.upstream.balancer.pick()
    assert node.addr == ("127.0.0.1", 1980) and node.family == socket.AF_INET
    assert node.name == b"127.0.0.1:1980"
    assert c.upstream.balancer.pick().addr == ("127.0.0.2", 81)


def test_node_forms_weights_ipv6_default_port_priority():
    t = Table.build({
        "/apisix/routes/1": {"uri": "/a", "upstream": {"nodes": {
            "[::1]:8080": 1, "127.0.0.1": 2, "127.0.0.3:90": 0}}},
        "/apisix/routes/2": {"uri": "/b", "upstream": {"nodes": [
            {"host": "127.0.0.1", "port": 1, "weight": 1, "priority": -1},
            {"host": "[::1]", "port": 2, "weight": 1, "priority": 5},
            {"host": "127.0.0.9", "port": 3, "weight": 0, "priority": 9}]}},
    }, CONF)
    nodes = target(t, "/a").upstream.nodes
    assert [(n.addr, n.family) for n in nodes] == [
        (("::1", 8080, 0, 0), socket.AF_INET6), (("127.0.0.1", 80), socket.AF_INET)]
    assert nodes[0].name == b"[::1]:8080"
    up = target(t, "/b").upstream
    assert [n.port for n in up.nodes] == [2, 1]  # weight 0 skipped, higher priority first
    assert up.balancer.pick().port == 2  # minimal balancing: first usable node


def test_service_merge(errors):
    t = Table.build({
        "/apisix/upstreams/u1": {"id": "u1", "nodes": {"127.0.0.1:1980": 1}},
        "/apisix/upstreams/u2": {"id": "u2", "nodes": {"127.0.0.1:1981": 1}},
        "/apisix/services/s1": {"id": "s1", "upstream_id": "u1", "hosts": ["svc.test"]},
        "/apisix/services/s2": {"id": "s2", "upstream": {"nodes": {"127.0.0.1:1982": 1}}},
        "/apisix/routes/1": {"id": "1", "uri": "/svc", "service_id": "s1"},
        "/apisix/routes/2": {"id": "2", "uri": "/own", "service_id": "s1", "upstream_id": "u2",
                             "host": "own.test"},
        "/apisix/routes/3": {"id": "3", "uri": "/inline", "service_id": "s2"},
        "/apisix/routes/4": {"id": "4", "uri": "/inline2", "service_id": "s2"},
    }, CONF)
    assert target(t, "/svc") is None  # the service's hosts apply to its routes
    svc = target(t, "/svc", "svc.test")
    assert svc.upstream is t.upstreams["u1"] and svc.service_id == "s1"
    own = target(t, "/own", "own.test")
    assert own.upstream is t.upstreams["u2"]  # the route's upstream and host win
    assert target(t, "/own", "svc.test") is None
    inline, inline2 = target(t, "/inline"), target(t, "/inline2")
    assert inline.upstream.balancer.pick().port == 1982
    assert inline.upstream is inline2.upstream  # one object per service
    assert not errors


def test_runtime_errors_keep_the_route_matching(errors):
    t = Table.build({
        "/apisix/routes/1": {"id": "1", "uri": "/dangling", "upstream_id": "missing"},
        "/apisix/routes/2": {"id": "2", "uri": "/nosvc", "service_id": "missing"},
        "/apisix/routes/3": {"id": "3", "uri": "/noup", "plugins": {}},
        "/apisix/routes/4": {"id": "4", "uri": "/empty", "upstream": {"nodes": {}}},
        "/apisix/routes/5": {"id": "5", "uri": "/zero", "upstream": {"nodes": {"127.0.0.1:1": 0}}},
        "/apisix/routes/6": {"id": "6", "uri": "/pc", "plugin_config_id": "nope",
                             "upstream": {"nodes": {"127.0.0.1:1": 1}}},
    }, CONF)
    assert target(t, "/dangling").error == 502
    assert target(t, "/nosvc").error == 404
    assert target(t, "/noup").error == 503
    assert target(t, "/empty").error == 503
    assert target(t, "/zero").error == 502
    assert target(t, "/pc").error == 503
    text = "\n".join(errors)
    assert "failed to find upstream by id: missing" in text
    assert "failed to fetch service configuration by id: missing" in text
    assert "missing upstream configuration in Route or Service" in text


def test_bad_objects_are_skipped_and_named(errors):
    t = Table.build({
        "/apisix/routes/": "init_dir",
        "/apisix/routes/bad1": {"id": "bad1", "uri": 42},
        "/apisix/routes/bad2": {"id": "bad2", "uri": "/x",
                                "upstream": {"nodes": {"[::1": 1}}},
        "/apisix/routes/bad3": {"id": "bad3", "uri": "/y", "upstream": {
            "nodes": {"127.0.0.1:1": 1}, "pass_host": "rewrite"}},
        "/apisix/routes/ok": {"id": "ok", "uri": "/ok", "upstream_id": "bad"},
        "/apisix/upstreams/bad": {"id": "bad", "nodes": {"127.0.0.1:99999": 1}},
        "/apisix/upstreams/": "init_dir",
        "/apisix/routes/nested/x": {"uri": "/nested"},
        "/apisix/routes/off": {"id": "off", "uri": "/off", "status": 0,
                               "upstream": {"nodes": {"127.0.0.1:1": 1}}},
        "/apisix/routes/vars": {"id": "vars", "uri": "/vars", "vars": [["arg_a", "=~", "1"]],
                                "upstream": {"nodes": {"127.0.0.1:1": 1}}},
    }, CONF)
    assert [r.id for r in t.routes] == ["ok"]
    assert target(t, "/ok").error == 502  # its upstream was invalid, hence dangling
    text = "\n".join(errors)
    for key in ("/apisix/routes/bad1", "/apisix/routes/bad2", "/apisix/routes/bad3",
                "/apisix/upstreams/bad", "/apisix/routes/vars"):
        assert key in text, key
    assert "`upstream_host` can't be empty" in text
    assert "invalid operator '=~'" in text
    assert target(t, "/nested") is None and target(t, "/off") is None


def test_host_header_for_pass_host_modes():
    t = Table.build({
        "/apisix/routes/1": {"uri": "/node", "upstream": {
            "nodes": {"127.0.0.1:8080": 1}, "pass_host": "node"}},
        "/apisix/routes/2": {"uri": "/node80", "upstream": {
            "nodes": {"127.0.0.1:80": 1}, "pass_host": "node"}},
        "/apisix/routes/3": {"uri": "/rw", "upstream": {
            "nodes": {"127.0.0.1:80": 1}, "pass_host": "rewrite", "upstream_host": "x.test"}},
        "/apisix/routes/4": {"uri": "/pass", "upstream": {"nodes": {"127.0.0.1:80": 1}}},
    }, CONF)
    assert target(t, "/node").upstream.balancer.pick().host_header == b"127.0.0.1:8080"
    assert target(t, "/node80").upstream.balancer.pick().host_header == b"127.0.0.1"
    up = target(t, "/rw").upstream
    assert up.pass_host == "rewrite" and up.host_header == b"x.test"
    assert target(t, "/pass").upstream.pass_host == "pass"


def test_timeouts_and_pool_settings():
    t = Table.build({
        "/apisix/upstreams/u": {"id": "u", "nodes": {"127.0.0.1:1": 1},
                                "timeout": {"connect": 2, "send": 3, "read": 4},
                                "keepalive_pool": {"size": 7, "idle_timeout": 8,
                                                   "requests": 9}},
        "/apisix/routes/1": {"uri": "/up", "upstream_id": "u"},
        "/apisix/routes/2": {"uri": "/route", "upstream_id": "u",
                             "timeout": {"connect": 0.5, "send": 0.5, "read": 1}},
        "/apisix/routes/3": {"uri": "/default", "upstream": {"nodes": {"127.0.0.1:1": 1}}},
    }, {"nginx_config": {"http": {"upstream": {"keepalive": 11, "keepalive_requests": 12,
                                                "keepalive_timeout": "13s"}}}})
    up = target(t, "/up")
    assert (up.timeout.connect, up.timeout.send, up.timeout.read) == (2, 3, 4)
    assert (up.upstream.pool_size, up.upstream.pool_idle, up.upstream.pool_requests) == (7, 8, 9)
    rt = target(t, "/route").timeout
    assert (rt.connect, rt.send, rt.read) == (0.5, 0.5, 1)
    d = target(t, "/default")
    assert (d.timeout.connect, d.timeout.read) == (60, 60)
    assert (d.upstream.pool_size, d.upstream.pool_idle, d.upstream.pool_requests) == (11, 13, 12)
    assert isinstance(Timeouts.from_conf(None), Timeouts)


def test_node_hostnames_resolve_at_build():
    t = Table.build({"/apisix/routes/1": {"uri": "/l", "upstream": {"nodes": {"localhost:1": 1}}}},
                    CONF)
    node = target(t, "/l").upstream.balancer.pick()
    assert node.addr[1] == 1 and node.host == "localhost" and node.name == b"localhost:1"


def test_router_settings_from_conf():
    objects = {"/apisix/routes/1": {"uri": "/x", "priority": 9,
                                    "upstream": {"nodes": {"127.0.0.1:1": 1}}},
               "/apisix/routes/2": {"uri": "/x", "host": "a.test",
                                    "upstream": {"nodes": {"127.0.0.1:2": 1}}}}
    by_host = Table.build(objects, CONF)
    assert target(by_host, "/x", "a.test").route_id == "2"
    uri_only = Table.build(objects, {"apisix": {"router": {"http": "radixtree_uri"},
                                                "delete_uri_tail_slash": True}})
    assert target(uri_only, "/x/", "a.test").route_id == "1"


def test_setting_helpers():
    assert setting({"a": {"b": None}}, "a", "b", default=3) == 3
    assert setting({"a": {"b": 0}}, "a", "b", default=3) == 0
    assert setting(None, "a", default=1) == 1
    assert duration("60s", 1) == 60 and duration("500ms", 1) == 0.5 and duration(None, 7) == 7
    assert duration("2m", 1) == 120 and duration(5, 1) == 5
    assert size("1m", 0) == 1048576 and size("512k", 0) == 524288 and size(0, 9) == 0


def fake_request(url: bytes, headers: list[tuple[bytes, bytes]], remote: bytes = b"10.1.2.3"):
    """What the router and balancers read of gateway.worker.request.Request."""
    from types import SimpleNamespace
    hdrs: list[bytes] = []
    for name, value in headers:
        hdrs += (name, b": ", value, b"\r\n")
    return SimpleNamespace(method=b"GET", path=url.split(b"?")[0], url=url, host=b"h.com",
                           host_hdr=b"h.com", hdrs=hdrs, xff=None, clen=None, conn=None,
                           expect=None, xf=None, body=None,
                           client=SimpleNamespace(remote=remote, port=b"9080"))


def test_conditions_and_balancers_read_the_worker_request():
    t = Table.build({
        "/apisix/routes/1": {"id": "1", "uri": "/a", "vars": [["http_x_v", "==", "2"]],
                             "remote_addrs": ["10.0.0.0/8"],
                             "upstream": {"type": "chash", "hash_on": "cookie", "key": "sid",
                                          "nodes": {"127.0.0.1:1": 1, "127.0.0.1:2": 1,
                                                    "127.0.0.1:3": 1}}},
        "/apisix/routes/2": {"id": "2", "uri": "/a", "priority": -1,
                             "filter_func": "def f(v):\n    return v['arg_q'] == 'x'\n",
                             "upstream": {"type": "least_conn",
                                          "nodes": {"127.0.0.1:4": 1}}},
    }, CONF)
    router = t.router
    hit = fake_request(b"/a?q=1", [(b"X-V", b"2"), (b"Cookie", b"sid=abc")])
    assert router.match_host(b"GET", b"h.com", b"/a", hit).id == "1"
    outside = fake_request(b"/a?q=x", [(b"X-V", b"2")], remote=b"192.168.0.1")
    assert router.match_host(b"GET", b"h.com", b"/a", outside).id == "2"
    assert router.match_host(b"GET", b"h.com", b"/a",
                             fake_request(b"/a", [(b"X-V", b"2")], b"8.8.8.8")) is None
    up = router.match_host(b"GET", b"h.com", b"/a", hit).data.upstream
    first = up.balancer.pick(hit)
    assert all(up.balancer.pick(fake_request(b"/a", [(b"Cookie", b"sid=abc")])) is first
               for _ in range(5))
    assert type(up.balancer).__name__ == "ConsistentHash"


def test_identical_stateless_inline_upstreams_are_shared():
    """One compiled upstream for routes repeating the same inline conf (worker RSS), but
    never when sharing would change a route's behaviour (balancer state, health checks)."""
    one = {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
    two = {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1, "127.0.0.1:1981": 1}}
    checked = {"nodes": {"127.0.0.1:1980": 1},
               "checks": {"active": {"http_path": "/status"}}}
    objs = {"/apisix/routes/%d" % i: {"id": str(i), "uri": "/r%d" % i, "upstream": up}
            for i, up in enumerate([one, dict(one), two, dict(two), checked, dict(checked)])}
    t = Table.build(objs, CONF)
    ups = [target(t, "/r%d" % i).upstream for i in range(6)]
    assert ups[0] is ups[1]
    assert ups[2] is not ups[3] and ups[4] is not ups[5]


def test_route_conf_is_read_from_the_packed_store():
    """In the worker's store, a route keeps a view over its packed bytes, not a dict."""
    from gateway.core import plane
    store = plane.LazyObjects()
    store.replace_all({"/apisix/routes/1": plane.pack_object(
        {"id": "1", "uri": "/a", "name": "n1", "upstream": {"nodes": {"127.0.0.1:1980": 1}}})})
    assert "/apisix/routes/1" in store and store["/apisix/routes/1"]["name"] == "n1"
    route = Table.build(store, CONF).router.match(b"GET", None, b"/a")
    assert isinstance(route.conf, plane.PackedObject)
    assert route.conf.get("name") == "n1" and route.conf["uri"] == "/a"
    assert route.data.upstream.balancer.pick().addr == ("127.0.0.1", 1980)


# --------------------------------------------------------------------------- route patches
def _route(rid: str, uri: str, **extra) -> dict:
    return {"id": rid, "uri": uri, "upstream": {"nodes": {"127.0.0.1:1980": 1}}, **extra}


def _served(table: Table, paths: list[str], host: str | None = None) -> list:
    return [(r.id if r is not None else None) for r in (
        table.router.match(b"GET", host.encode() if host else None, p.encode())
        for p in paths)]


def test_a_route_change_is_patched_and_serves_like_a_full_build():
    """Adding, replacing and deleting routes rebuilds only those routes; the other Route
    objects are kept; every patched table matches what a full build of the same objects
    matches (priority ties go to the earlier key, as in a full build)."""
    from gateway.core import plane
    store = plane.LazyObjects()
    objs = {"/apisix/upstreams/u1": {"id": "u1", "nodes": {"127.0.0.1:1981": 1}},
            "/apisix/routes/b": _route("b", "/same"),
            "/apisix/routes/d": _route("d", "/d*"),
            "/apisix/routes/f": _route("f", "/f", priority=1)}
    store.replace_all({k: plane.pack_object(v) for k, v in objs.items()})
    table = Table.build(store, CONF)
    kept = table.router.match(b"GET", None, b"/d/x")
    paths = ["/same", "/d/x", "/dd", "/f", "/new", "/a", "/c"]
    steps = [
        {"/apisix/routes/a": _route("a", "/same")},            # same uri, earlier key: wins
        {"/apisix/routes/c": {"id": "c", "uri": "/c", "upstream_id": "u1"},
         "/apisix/routes/e": None},
        {"/apisix/routes/b": _route("b", "/new")},              # replaced: old path gone
        {"/apisix/routes/a": None},                              # deleted
        {"/apisix/routes/f": _route("f", "/same", priority=5)},  # higher priority wins
        {"/apisix/routes/x": {"id": "x", "uri": 42}},            # invalid: skipped
    ]
    for step in steps:
        ops = [(k, plane.pack_object(v) if v is not None else None) for k, v in step.items()]
        store.apply(ops)
        patched = table.patched(store, list(step), CONF)
        assert patched is not None
        whole = Table.build(store, CONF, cooperative=False)
        assert _served(patched, paths) == _served(whole, paths), step
        assert [r.id for r in patched.routes] == [r.id for r in whole.routes]
        assert patched.router.match(b"GET", None, b"/d/x") is kept   # not rebuilt
        table = patched
    assert _served(table, ["/same", "/new", "/c"]) == ["f", "b", "c"]
    assert table.router.match(b"GET", None, b"/c").data.upstream is table.upstreams["u1"]
    assert isinstance(table.router.match(b"GET", None, b"/new").conf, plane.PackedObject)


def test_changes_beyond_routes_need_a_full_build():
    table = Table.build({"/apisix/routes/1": _route("1", "/a")}, CONF)
    for keys in (["/apisix/upstreams/u1"], ["/apisix/routes/1", "/apisix/services/s"],
                 ["/apisix/global_rules/1"], ["/apisix/plugin_metadata/echo"],
                 ["/apisix/consumers/jack"], ["/apisix/ssls/1"]):
        assert table.patched({}, keys, CONF) is None, keys
    assert table.patched({}, ["/apisix/routes/1"], dict(CONF)) is None  # another conf
    assert Table.empty().patched({}, ["/apisix/routes/1"], CONF) is None


def test_a_table_counts_the_patches_since_its_full_build():
    objects = {"/apisix/routes/1": _route("1", "/a")}
    table = Table.build(objects, CONF)
    assert table.patches == 0 and Table.empty().patches == 0
    for i in range(3):
        objects["/apisix/routes/1"] = _route("1", "/a%d" % i)
        table = table.patched(objects, ["/apisix/routes/1"], CONF)
        assert _served(table, ["/a%d" % i]) == ["1"] and table.patches == i + 1
    assert Table.build(objects, CONF).patches == 0


def test_a_patched_route_logs_as_a_full_build_does(errors):
    objects = {"/apisix/routes/1": _route("1", "/a")}
    table = Table.build(objects, CONF)
    objects["/apisix/routes/2"] = {"id": "2", "uri": "/b", "service_id": "nope",
                                   "upstream": {"nodes": {"127.0.0.1:1980": 1}}}
    objects["/apisix/routes/3"] = {"id": "3", "uri": ["not", "a", "string"], "x": 1}
    patched = table.patched(objects, ["/apisix/routes/2", "/apisix/routes/3"], CONF)
    assert target(patched, "/b").error == 404 and target(patched, "/a").error == 0
    assert any("route 2: failed to fetch service configuration by id: nope" in line
               for line in errors)


def test_routes_inserted_between_two_keep_the_order_of_their_keys():
    """A new route's seq is taken between its neighbours'; sixty inserted between the same
    two use up the room between them and everything is numbered again, in key order."""
    objects = {"/apisix/routes/a": _route("a", "/x"), "/apisix/routes/b": _route("b", "/same")}
    table = Table.build(objects, CONF)
    for i in range(60):     # each one just before b: the room left halves every time
        objects["/apisix/routes/a%03d" % i] = _route("a%03d" % i, "/same")
        table = table.patched(objects, ["/apisix/routes/a%03d" % i], CONF)
        seqs = [r.seq for r in table.routes]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert _served(table, ["/same"]) == ["a000"]   # the first key wins
    assert [r.id for r in table.routes] == [r.id for r in Table.build(objects, CONF).routes]


def test_a_patch_says_whether_the_health_checkers_stay_the_same():
    checks = {"active": {"http_path": "/status"}}
    objects = {"/apisix/routes/1": _route("1", "/a"),
               "/apisix/routes/2": {"id": "2", "uri": "/b", "upstream": {
                   "nodes": {"127.0.0.1:1980": 1}, "checks": checks}}}
    table = Table.build(objects, CONF)
    assert not table.same_health            # a full build: the worker looks at them all
    objects["/apisix/routes/1"] = _route("1", "/a2")
    table = table.patched(objects, ["/apisix/routes/1"], CONF)
    assert table.same_health
    objects["/apisix/routes/2"] = dict(objects["/apisix/routes/2"], uri="/b2")
    assert not table.patched(objects, ["/apisix/routes/2"], CONF).same_health   # replaced
    objects["/apisix/routes/3"] = dict(objects["/apisix/routes/2"], id="3", uri="/c")
    assert not table.patched(objects, ["/apisix/routes/3"], CONF).same_health   # added
    del objects["/apisix/routes/2"]
    assert not table.patched(objects, ["/apisix/routes/2"], CONF).same_health   # deleted
