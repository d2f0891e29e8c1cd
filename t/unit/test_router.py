"""Route matching rules (gateway.core.router): APISIX's radixtree routers, spec §3.1."""

from __future__ import annotations

import pytest

from gateway.core.ctxvars import RequestVars
from gateway.core.router import (
    Route,
    Router,
    normalize_path,
    request_host,
    routing_path,
    strip_port,
)


def ids(router: Router, method: str, host: str | None, path: str) -> str | None:
    route = router.match(method.encode(), host.encode() if host is not None else None,
                         path.encode())
    return route.id if route is not None else None


def build(*routes: dict, **opts) -> Router:
    return Router.build([dict(r, id=r.get("id", str(i))) for i, r in enumerate(routes)], **opts)


def test_exact_and_no_match():
    r = build({"id": "a", "uri": "/hello"})
    assert ids(r, "GET", None, "/hello") == "a"
    assert ids(r, "GET", None, "/hello/") is None
    assert ids(r, "GET", None, "/hell") is None
    assert ids(r, "GET", None, "/helloo") is None


def test_prefix_forms():
    r = build({"id": "star", "uri": "/foo*"}, {"id": "slash", "uri": "/bar/*"},
              {"id": "all", "uri": "/*"})
    assert ids(r, "GET", None, "/foo") == "star"
    assert ids(r, "GET", None, "/foobar") == "star"
    assert ids(r, "GET", None, "/foo/a/b") == "star"
    assert ids(r, "GET", None, "/bar/") == "slash"
    assert ids(r, "GET", None, "/bar/x") == "slash"
    assert ids(r, "GET", None, "/bar") == "all"  # "/bar/*" does not cover "/bar"
    assert ids(r, "GET", None, "/") == "all"


def test_exact_beats_prefix_and_longest_prefix_wins():
    r = build({"id": "short", "uri": "/blog/foo/*"}, {"id": "long", "uri": "/blog/foo/a/*"},
              {"id": "exact", "uri": "/blog/foo/a/b"}, {"id": "root", "uri": "/*"})
    assert ids(r, "GET", None, "/blog/foo/a/b") == "exact"
    assert ids(r, "GET", None, "/blog/foo/a/c") == "long"
    assert ids(r, "GET", None, "/blog/foo/x") == "short"
    assert ids(r, "GET", None, "/other") == "root"


def test_priority_among_same_path_then_insertion_order():
    r = build({"id": "low", "uri": "/p", "priority": 1}, {"id": "high", "uri": "/p", "priority": 5},
              {"id": "first0", "uri": "/q"}, {"id": "second0", "uri": "/q"})
    assert ids(r, "GET", None, "/p") == "high"
    assert ids(r, "GET", None, "/q") == "first0"


def test_methods_filter_falls_through_to_next_candidate():
    r = build({"id": "post", "uri": "/m", "methods": ["POST"], "priority": 10},
              {"id": "get", "uri": "/m", "methods": ["GET", "HEAD"]},
              {"id": "prefix", "uri": "/m*"})
    assert ids(r, "POST", None, "/m") == "post"
    assert ids(r, "GET", None, "/m") == "get"
    assert ids(r, "HEAD", None, "/m") == "get"
    assert ids(r, "PUT", None, "/m") == "prefix"  # exact candidates all refused
    assert ids(r, "DELETE", None, "/m") == "prefix"


def test_host_exact_wildcard_and_port_stripping():
    r = build({"id": "exact", "uri": "/h", "host": "www.example.com"},
              {"id": "wild", "uri": "/h", "hosts": ["*.example.com"]},
              {"id": "any", "uri": "/h"})
    assert ids(r, "GET", "www.example.com", "/h") == "exact"
    assert ids(r, "GET", "WWW.Example.COM:8080", "/h") == "exact"
    assert ids(r, "GET", "api.example.com", "/h") == "wild"
    assert ids(r, "GET", "a.b.example.com", "/h") == "wild"
    assert ids(r, "GET", "example.com", "/h") == "any"  # a wildcard does not cover the apex
    assert ids(r, "GET", None, "/h") == "any"
    assert ids(r, "GET", "other.org", "/h") == "any"


def test_longer_wildcard_first():
    r = build({"id": "short", "uri": "/w", "host": "*.com"},
              {"id": "long", "uri": "/w", "host": "*.example.com"})
    assert ids(r, "GET", "a.example.com", "/w") == "long"
    assert ids(r, "GET", "a.other.com", "/w") == "short"


def test_host_routes_win_over_hostless_whatever_the_priority():
    r = build({"id": "plain", "uri": "/x", "priority": 100},
              {"id": "hosted", "uri": "/*", "host": "a.test"})
    assert ids(r, "GET", "a.test", "/x") == "hosted"
    assert ids(r, "GET", "b.test", "/x") == "plain"


def test_host_route_falls_back_when_its_uri_does_not_match():
    r = build({"id": "hosted", "uri": "/only", "host": "a.test"}, {"id": "plain", "uri": "/x"})
    assert ids(r, "GET", "a.test", "/x") == "plain"


def test_radixtree_uri_mode_uses_hosts_as_a_filter():
    routes = ({"id": "plain", "uri": "/x", "priority": 100},
              {"id": "hosted", "uri": "/x", "host": "a.test"},
              {"id": "wild", "uri": "/y", "host": "*.test"})
    r = build(*routes, mode="radixtree_uri")
    assert ids(r, "GET", "a.test", "/x") == "plain"  # priority decides, host is a filter
    assert ids(r, "GET", "b.test", "/y") == "wild"
    assert ids(r, "GET", "b.org", "/y") is None


def test_status_zero_excluded_and_uris_list():
    r = build({"id": "off", "uri": "/off", "status": 0}, {"id": "multi", "uris": ["/a", "/b/*"]})
    assert ids(r, "GET", None, "/off") is None
    assert ids(r, "GET", None, "/a") == "multi"
    assert ids(r, "GET", None, "/b/c") == "multi"


def test_delete_uri_tail_slash():
    r = build({"id": "a", "uri": "/a"}, delete_uri_tail_slash=True)
    assert ids(r, "GET", None, "/a/") == "a"
    assert ids(r, "GET", None, "/") is None


def test_empty_router():
    assert Router(()).match(b"GET", b"x", b"/") is None


@pytest.mark.parametrize("conf", [
    {"id": "1"},
    {"id": "1", "uri": ""},
    {"id": "1", "uri": "/a", "methods": ["FETCH"]},
    {"id": "1", "uri": "/a", "hosts": "a.test"},
    {"id": "1", "uri": "/a", "priority": "high"},
])
def test_bad_route_shapes_raise_value_error(conf):
    with pytest.raises(ValueError):
        Route.from_conf(conf)


def test_many_exact_routes_are_a_dict_lookup():
    r = Router.build([{"id": str(i), "uri": "/r/%d" % i} for i in range(5000)])
    assert ids(r, "GET", None, "/r/4999") == "4999"
    assert ids(r, "GET", None, "/r/5000") is None
    assert len(r.plain.exact) == 5000 and not r.plain.prefixes


@pytest.mark.parametrize("raw, want", [
    (b"/a/b", b"/a/b"),
    (b"/a//b", b"/a/b"),
    (b"/a/./b", b"/a/b"),
    (b"/a/x/../b", b"/a/b"),
    (b"/a/b/", b"/a/b/"),
    (b"/a/b/..", b"/a/"),
    (b"/%68ello", b"/hello"),
    (b"/a%2Fb", b"/a/b"),
    (b"/100%", b"/100%"),
    (b"/..", None),
    (b"/a/../../b", None),
    (b"/%00", None),
])
def test_normalize_path(raw, want):
    assert normalize_path(raw) == want


def test_routing_path_and_request_host():
    assert routing_path(b"/hello") == b"/hello"
    assert routing_path(b"/a/../hello") == b"/hello"
    assert routing_path(b"/../x") == b""
    assert routing_path(b"example.com:443") == b"example.com:443"  # CONNECT target
    assert request_host(b"Example.COM:8080") == b"example.com"
    assert strip_port(b"[::1]:80") == b"[::1]"
    assert strip_port(b"[::1]") == b"[::1]"
    assert strip_port(b"host") == b"host"


# ---------------------------------------------------------------- conditions and params


def env(url: str = "/", remote: str = "127.0.0.1", headers: dict | None = None,
        method: str = "GET", host: str = "") -> RequestVars:
    return RequestVars(method.encode(), url.split("?")[0].encode(), url.encode(),
                       host.encode(), remote.encode(),
                       [(k.encode(), v.encode()) for k, v in (headers or {}).items()])


def mid(router: Router, e: RequestVars, host: str | None = None) -> str | None:
    route = router.match(e.method, host.encode() if host else None, e.path, e)
    return route.id if route is not None else None


def test_params_only_in_parameter_mode():
    routes = ({"id": "user", "uri": "/user/:name"},
              {"id": "rest", "uri": "/files/:bucket/*path"},
              {"id": "lit", "uri": "/user/:name/x"})
    r = build(*routes, mode="radixtree_uri_with_parameter")
    e = env("/user/jack")
    assert mid(r, e) == "user" and e["uri_param_name"] == "jack"
    assert mid(r, env("/user/")) is None          # a parameter is never empty
    assert mid(r, env("/user/a/b")) is None       # one segment only
    assert mid(r, env("/user/a/x")) == "lit"
    e = env("/files/b1/a/b/c.txt")
    assert mid(r, e) == "rest"
    assert e["uri_param_bucket"] == "b1" and e["uri_param_path"] == "a/b/c.txt"
    plain = build(*routes)
    assert mid(plain, env("/user/jack")) is None
    assert mid(plain, env("/user/:name")) == "user"  # literal outside parameter mode


def test_params_compete_as_prefixes():
    r = build({"id": "param", "uri": "/api/:v/items"}, {"id": "exact", "uri": "/api/v1/items"},
              {"id": "longer", "uri": "/api/v2/*"}, mode="radixtree_uri_with_parameter")
    assert mid(r, env("/api/v1/items")) == "exact"      # exact beats prefix
    assert mid(r, env("/api/v2/items")) == "longer"     # longer static prefix first
    assert mid(r, env("/api/v3/items")) == "param"


def test_remote_addrs_cidr_and_ipv6():
    r = build({"id": "lan", "uri": "/a", "remote_addrs": ["10.0.0.0/8", "192.168.1.1"]},
              {"id": "v6", "uri": "/a", "remote_addr": "2001:db8::/32"},
              {"id": "any", "uri": "/a", "priority": -1})
    assert mid(r, env("/a", "10.1.2.3")) == "lan"
    assert mid(r, env("/a", "192.168.1.1")) == "lan"
    assert mid(r, env("/a", "192.168.1.2")) == "any"
    assert mid(r, env("/a", "2001:db8::1")) == "v6"
    assert mid(r, env("/a", "::1")) == "any"
    with pytest.raises(ValueError, match="invalid remote_addr"):
        build({"uri": "/a", "remote_addrs": ["10.0.0.0/33"]})


def test_route_with_conditions_never_matches_without_request_vars():
    r = build({"id": "v", "uri": "/a", "vars": [["arg_x", "==", "1"]]})
    assert ids(r, "GET", None, "/a") is None


def test_vars_fall_through_to_next_candidate_and_host_first():
    r = build({"id": "beta", "uri": "/a", "priority": 5,
               "vars": [["http_x_beta", "==", "1"]]},
              {"id": "cookie", "uri": "/a", "vars": [["cookie_uid", "~~", "^u[0-9]+$"]]},
              {"id": "arg", "uri": "/a", "vars": [["arg_v", "in", ["1", "2"]]]},
              {"id": "host", "uri": "/a", "host": "h.com",
               "vars": [["request_method", "==", "POST"]]},
              {"id": "base", "uri": "/a", "priority": -5})
    assert mid(r, env("/a", headers={"X-Beta": "1"})) == "beta"
    assert mid(r, env("/a?v=2")) == "arg"
    assert mid(r, env("/a", headers={"Cookie": "uid=u12"})) == "cookie"
    assert mid(r, env("/a")) == "base"
    assert mid(r, env("/a", method="POST"), "h.com") == "host"
    assert mid(r, env("/a"), "h.com") == "base"


def test_filter_func():
    src = "def filter(vars):\n    return vars['arg_k'] == 'v'\n"
    boom = "def filter(vars):\n    return 1 / 0\n"
    r = build({"id": "f", "uri": "/a", "filter_func": src},
              {"id": "boom", "uri": "/b", "filter_func": boom},
              {"id": "fallback", "uri": "/b", "priority": -1})
    assert mid(r, env("/a?k=v")) == "f"
    assert mid(r, env("/a?k=w")) is None
    assert mid(r, env("/b")) == "fallback"   # an exception is "no match", not a crash
    for bad, why in (("function(vars) return true end", "not valid Python"),
                     ("x = 1\ny = 2\n", "exactly one function"),
                     ("def a(v): pass\ndef b(v): pass", "exactly one function"),
                     ("def f(a, b):\n    return True", "one argument")):
        with pytest.raises(ValueError, match=why):
            build({"uri": "/a", "filter_func": bad})


def test_make_vars_factory_called_once_and_only_with_conditions():
    made = []

    def factory(req):
        made.append(req)
        return env("/a?x=1")
    r = Router.build([{"id": "v", "uri": "/a", "vars": [["arg_x", "==", "1"]]},
                      {"id": "w", "uri": "/a*", "vars": [["arg_x", "==", "2"]]}],
                     make_vars=factory)
    assert r.match_host(b"GET", b"", b"/a", "REQ").id == "v"
    assert made == ["REQ"]
    plain = Router.build([{"id": "p", "uri": "/a"}], make_vars=factory)
    assert plain.match_host(b"GET", b"", b"/a", "REQ").id == "p"
    assert made == ["REQ"]


def test_unknown_mode_refused():
    with pytest.raises(ValueError, match="unknown router mode"):
        build({"uri": "/a"}, mode="radixtree_nope")


def test_many_prefix_routes_cost_depends_on_lengths_not_count():
    r = Router.build([{"id": str(i), "uri": "/svc%d/*" % i} for i in range(10000)])
    assert ids(r, "GET", None, "/svc9999/x") == "9999"
    assert ids(r, "GET", None, "/svc1/x") == "1"
    assert len(r.plain.prefixes) == 4  # one probe per distinct prefix length


# --------------------------------------------------------------------------- patches
_URIS = ["/a", "/a*", "/a/*", "/a/b", "/user/:name", "/files/*path", "/*", "/a/:x/c", "/b"]
_HOSTS = [None, ["foo.com"], ["*.foo.com"], ["bar.com", "*.com"], ["x.foo.com"]]
_REQUESTS = [(m, h, p) for m in ("GET", "POST") for h in (None, "foo.com", "x.foo.com",
                                                          "bar.com", "y.com")
             for p in ("/a", "/a/", "/a/b", "/ab", "/user/jo", "/files/x/y", "/a/1/c", "/b",
                       "/zzz", "/a/b/")]


@pytest.mark.parametrize("mode", ["radixtree_host_uri", "radixtree_uri",
                                  "radixtree_uri_with_parameter"])
def test_a_patched_router_matches_as_a_new_one(mode):
    """Routes added, replaced and removed one patch at a time (random but seeded): after
    each, the patched router answers every request as a router built from scratch over
    the same routes, and the router it came from still answers as before."""
    import random
    rnd = random.Random(7)
    current: dict[str, Route] = {}

    def make(key: str) -> Route:
        conf = {"id": key, "uris": rnd.sample(_URIS, rnd.choice((1, 1, 2))),
                "priority": rnd.choice((0, 0, 1, 5))}
        hosts = rnd.choice(_HOSTS)
        if hosts:
            conf["hosts"] = hosts
        if rnd.random() < 0.3:
            conf["methods"] = ["POST"]
        if rnd.random() < 0.2:
            conf["vars"] = [["arg_k", "==", "v"]]
        return Route.from_conf(conf)

    def ordered() -> list[Route]:
        routes = [current[k] for k in sorted(current)]
        for seq, route in enumerate(routes):
            route.seq = seq
        return routes

    def answers(router: Router) -> list:
        return [ids(router, m, h, p) for m, h, p in _REQUESTS]

    router = Router(ordered(), mode=mode)
    for _step in range(150):
        before = answers(router)
        removed, added = [], []
        for _ in range(rnd.choice((1, 1, 2, 3))):
            key = "r%02d" % rnd.randrange(30)
            if key in current:
                removed.append(current.pop(key))
            if rnd.random() < 0.7:
                current[key] = make(key)
                added.append(current[key])
        routes = ordered()
        patched = router.patched(removed, [r for r in added if current.get(r.id) is r],
                                 routes)
        assert answers(patched) == answers(Router(routes, mode=mode))
        assert answers(router) == before
        router = patched
    assert len(current) > 10


def test_a_patch_keeps_the_plain_match_binding():
    """Without host routes or conditions the router binds the path table's match; a patch
    that brings a host route (or a condition) switches to the full match, and back."""
    a = Route.from_conf({"id": "a", "uri": "/a"})
    r = Router([a])
    assert r.match_host == r.plain.match
    h = Route.from_conf({"id": "h", "uri": "/a", "hosts": ["foo.com"]}, seq=1)
    p = r.patched([], [h], [a, h])
    assert p.match_host != p.plain.match and p.has_hosts
    assert ids(p, "GET", "foo.com", "/a") == "h" and ids(p, "GET", "bar.com", "/a") == "a"
    back = p.patched([h], [], [a])
    assert back.match_host == back.plain.match and not back.has_hosts
    c = Route.from_conf({"id": "c", "uri": "/c", "vars": [["arg_k", "==", "v"]]}, seq=1)
    with_checks = back.patched([], [c], [a, c])
    assert with_checks.has_checks
    assert not with_checks.patched([c], [], [a]).has_checks
