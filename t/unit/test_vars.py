"""The vars expression language (gateway.core.vars) and lazy request variables
(gateway.core.ctxvars): spec §2.11."""

from __future__ import annotations

import pytest

from gateway.core.ctxvars import RequestVars
from gateway.core.vars import VarsError, compile_vars, validate_vars


def rv(url: bytes = b"/p?a=1&b=x&A=dup&n=12", method: bytes = b"GET",
       headers: list[tuple[bytes, bytes]] | None = None, remote: bytes = b"10.0.0.7",
       host: bytes = b"example.com") -> RequestVars:
    path = url.split(b"?")[0]
    return RequestVars(method, path, url, host, remote, headers if headers is not None else [
        (b"X-Api-Version", b"v2"), (b"Cookie", b"sid=abc; lang=fr"), (b"x-api-version", b"v3"),
        (b"User-Agent", b"curl/8.0")])


def ok(expr: list, v: RequestVars | None = None) -> bool:
    return compile_vars(expr)(v or rv())


def test_variables():
    v = rv()
    assert v["arg_a"] == "1" and v["arg_missing"] is None
    assert v["arg_n"] == "12"
    assert v["http_x_api_version"] == "v2"       # first of a repeated header
    assert v["http_user_agent"] == "curl/8.0"
    assert v["cookie_sid"] == "abc" and v["cookie_lang"] == "fr" and v["cookie_x"] is None
    assert v["uri"] == "/p" and v["request_uri"] == "/p?a=1&b=x&A=dup&n=12"
    assert v["host"] == "example.com" and v["remote_addr"] == "10.0.0.7"
    assert v["request_method"] == "GET" and v["query_string"] == "a=1&b=x&A=dup&n=12"
    assert v.get("unknown", "dflt") == "dflt"


def test_headers_parsed_lazily_once():
    calls = []

    def src():
        calls.append(1)
        return [(b"X-A", b"1")]
    v = RequestVars(b"GET", b"/", b"/", b"", b"", src)
    assert calls == []
    assert v["http_x_a"] == "1" and v["http_x_b"] is None
    assert calls == [1]


@pytest.mark.parametrize("expr,want", [
    ([["arg_a", "==", "1"]], True),
    ([["arg_a", "==", 1]], True),                 # number against number
    ([["arg_b", "==", 1]], False),                # not a number
    ([["arg_a", "~=", "1"]], False),
    ([["arg_missing", "~=", "1"]], True),         # nil ~= "1"
    ([["arg_missing", "==", "1"]], False),
    ([["arg_n", ">", 10]], True),
    ([["arg_n", "<", 10]], False),
    ([["arg_n", ">=", 12], ["arg_n", "<=", 12]], True),
    ([["arg_b", ">", 1]], False),                 # non-number → false
    ([["arg_missing", "<", 1]], False),
    ([["http_x_api_version", "~~", "^v[0-9]$"]], True),
    ([["http_x_api_version", "~~", "V2"]], False),
    ([["http_x_api_version", "~*", "V2"]], True),
    ([["arg_missing", "~~", ".*"]], False),
    ([["arg_b", "in", ["x", "y"]]], True),
    ([["arg_b", "in", ["y"]]], False),
    ([["arg_n", "in", [12, 13]]], True),
    ([["remote_addr", "ipmatch", ["10.0.0.0/8"]]], True),
    ([["remote_addr", "ipmatch", "10.0.0.7"]], True),
    ([["remote_addr", "ipmatch", ["192.168.0.0/16", "::1"]]], False),
    ([["arg_a", "!", "==", "1"]], False),
    ([["arg_a", "!", "~=", "1"]], True),
    ([["arg_b", "!", "in", ["y"]]], True),
    ([["arg_a", "==", "1"], ["arg_b", "==", "nope"]], False),   # a list is AND
    ([], True),
])
def test_operators(expr, want):
    assert ok(expr) is want


def test_has_on_list_values():
    v = rv()
    v.extra = {"tags": ["a", "b"], "scalar": "a"}
    assert compile_vars([["tags", "has", "b"]])(v) is True
    assert compile_vars([["tags", "has", "c"]])(v) is False
    assert compile_vars([["scalar", "has", "a"]])(v) is False


def test_ipv6_ipmatch():
    v = rv(remote=b"2001:db8::5")
    assert compile_vars([["remote_addr", "ipmatch", ["2001:db8::/32"]]])(v)
    assert not compile_vars([["remote_addr", "ipmatch", ["10.0.0.0/8"]]])(v)


def test_logical_trees():
    t = ["OR", ["arg_a", "==", "2"], ["AND", ["arg_b", "==", "x"], ["arg_n", ">", 5]]]
    assert ok(t) is True
    assert ok(["!OR", ["arg_a", "==", "2"], ["arg_b", "==", "y"]]) is True
    assert ok(["!AND", ["arg_a", "==", "1"], ["arg_b", "==", "x"]]) is False
    assert ok(["AND", ["arg_a", "==", "1"], ["!OR", ["arg_b", "==", "x"]]]) is False
    # a logical node nested inside the implicit AND list
    assert ok([["arg_a", "==", "1"], ["OR", ["arg_b", "==", "q"], ["arg_n", "==", 12]]])


def test_short_circuit():
    seen = []
    v = rv()
    v.extra = {}

    class Spy(dict):
        def get(self, k, d=None):
            seen.append(k)
    v.extra = Spy()
    assert compile_vars(["OR", ["arg_a", "==", "1"], ["spy", "==", "x"]])(v)
    assert seen == []


@pytest.mark.parametrize("expr,reason", [
    ("x", "vars must be an array"),
    ([["arg_a", "=~", "1"]], "invalid operator '=~'"),
    ([["arg_a", "=="]], "expected [var, op, value]"),
    ([["arg_a", "?", "==", "1"]], "must be '!'"),
    ([["arg_a", "~~", "("]], "failed to compile regex"),
    ([["arg_a", ">", "abc"]], "> needs a number"),
    ([["arg_a", "in", "abc"]], "in needs an array"),
    ([["remote_addr", "ipmatch", ["300.1.1.1"]]], "invalid ip address"),
    ([[1, "==", "1"]], "variable must be a non-empty string"),
    (["OR"], "needs at least one expression"),
    ([["arg_a", "==", "1"], "oops"], "expected an array"),
])
def test_validation_errors(expr, reason):
    with pytest.raises(VarsError, match=None) as info:
        compile_vars(expr)
    assert reason in str(info.value)
    assert reason in validate_vars(expr)


def test_valid_expression_validates():
    assert validate_vars([["arg_a", "==", "1"], ["OR", ["http_x", "~~", "a"]]]) is None


def test_post_args_and_params():
    v = RequestVars(b"POST", b"/", b"/", b"", b"",
                    [(b"Content-Type", b"application/x-www-form-urlencoded")],
                    body=lambda: b"name=jack&age=3")
    assert v["post_arg_name"] == "jack" and v["post_arg_x"] is None
    v.params = {"id": "42"}
    assert v["uri_param_id"] == "42"


def test_schema_check_refuses_bad_conditions_with_a_reason():
    from gateway.core import schema
    up = {"nodes": {"127.0.0.1:1980": 1}}
    assert schema.check("routes", {"uri": "/a", "vars": [["arg_a", "==", "1"]],
                                   "filter_func": "def f(v):\n    return True",
                                   "remote_addrs": ["::1", "10.0.0.0/8"], "upstream": up}) is None
    assert "invalid operator '=~'" in schema.check(
        "routes", {"uri": "/a", "vars": [["arg_a", "=~", "1"]], "upstream": up})
    assert "not valid Python" in schema.check(
        "routes", {"uri": "/a", "filter_func": "function(vars) return true end",
                   "upstream": up})
    assert "invalid remote_addr" in schema.check(
        "routes", {"uri": "/a", "remote_addr": "1.2.3.4/40", "upstream": up})
    assert schema.check("upstreams", {"type": "chash", "nodes": {}}) == "missing key"
    assert schema.check("upstreams", {"type": "chash", "hash_on": "consumer",
                                      "nodes": {}}) is None
    assert "key" in schema.check("routes", {"uri": "/a", "upstream": {
        "type": "chash", "key": "bad var", "nodes": {}}})
