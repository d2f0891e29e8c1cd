"""Route matching rules (gateway.core.router): APISIX's radixtree routers, spec §3.1."""

from __future__ import annotations

import pytest

from gateway.core.router import (Route, Router, normalize_path, request_host, routing_path,
                                 strip_port)


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
