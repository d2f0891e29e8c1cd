"""Object schemas, cross-field rules and APISIX-worded messages (gateway.core.schemas;
spec §1.3, §2, §9)."""

from __future__ import annotations

import pytest

from gateway.core import schema
from gateway.core.schemas import validate
from gateway.core.schemas.messages import lua_type, quote

CERT = "-----BEGIN CERTIFICATE-----\n" + "A" * 200 + "\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\n" + "B" * 100 + "\n-----END PRIVATE KEY-----\n"
UP = {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}
BAD = "invalid configuration: "


VALID = [
    ("routes", {"uri": "/hello", "upstream": UP}),
    ("routes", {"id": "r-1.x_y", "name": "r", "desc": "d", "labels": {"env": "prod"},
                "uris": ["/a", "/b/*"], "hosts": ["*.foo.com", "bar.com"],
                "methods": ["GET", "PURGE"], "remote_addrs": ["10.0.0.0/8", "::1"],
                "vars": [["arg_a", "==", "1"]], "priority": 10, "plugins": {},
                "upstream_id": 1, "service_id": "s1", "plugin_config_id": "pc",
                "timeout": {"connect": 1, "send": 2.5, "read": 3},
                "enable_websocket": True, "status": 0,
                "create_time": 1700000000, "update_time": 1700000001}),
    ("routes", {"uri": "/x", "host": "*", "service_id": 1}),
    ("routes", {"uri": "/x", "script": "local _M = {} return _M"}),
    ("upstreams", UP),
    ("upstreams", {"id": 1, "nodes": [{"host": "[::1]", "port": 80, "weight": 1,
                                        "priority": -1, "metadata": {}}],
                   "type": "chash", "hash_on": "header", "key": "X-User",
                   "retries": 0, "retry_timeout": 0, "scheme": "https",
                   "pass_host": "rewrite", "upstream_host": "example.com",
                   "keepalive_pool": {"size": 320, "idle_timeout": 60, "requests": 1000},
                   "tls": {"client_cert": CERT, "client_key": KEY, "verify": False},
                   "checks": {"active": {"type": "http", "http_path": "/status",
                                         "healthy": {"interval": 2, "successes": 1},
                                         "unhealthy": {"interval": 1, "http_failures": 2}},
                              "passive": {"healthy": {"http_statuses": [200], "successes": 0},
                                          "unhealthy": {"http_statuses": [500],
                                                        "tcp_failures": 0}}}}),
    ("upstreams", {"service_name": "svc", "discovery_type": "dns",
                   "discovery_args": {"namespace_id": "n", "group_name": "g"}}),
    ("upstreams", {"nodes": {}, "type": "chash", "hash_on": "consumer"}),
    ("upstreams", {"nodes": {"[::1]:8080": 1}, "tls": {"client_cert_id": "ssl-1"}}),
    ("services", {"id": "1", "plugins": {}, "upstream": UP, "hosts": ["a.com"],
                  "enable_websocket": False}),
    ("services", {}),
    ("consumers", {"username": "jack_1-x", "desc": "d", "labels": {"custom_id": "c1"},
                   "group_id": "g1", "plugins": {"key-auth": {"key": "k"}}}),
    ("credentials", {"id": "c1", "name": "n", "plugins": {"key-auth": {"key": "k"}}}),
    ("consumer_groups", {"id": "g1", "plugins": {"limit-count": {}}, "labels": {"a": "b"}}),
    ("ssls", {"cert": CERT, "key": KEY, "snis": ["test.com", "*.test.com"],
              "certs": [CERT], "keys": [KEY], "ssl_protocols": ["TLSv1.2", "TLSv1.3"],
              "client": {"ca": CERT, "depth": 2, "skip_mtls_uri_regex": ["/anything.*"]},
              "status": 1}),
    ("ssls", {"type": "client", "cert": CERT, "key": KEY}),
    ("ssls", {"sni": "test.com", "cert": "$env://CERT", "key": "$secret://vault/1/key"}),
    ("global_rules", {"id": 1, "plugins": {"prometheus": {}}}),
    ("plugin_configs", {"id": "pc1", "name": "anything at all", "plugins": {}}),
    ("protos", {"id": "p1", "content": "syntax = \"proto3\";"}),
    ("secrets", {"id": "vault/1", "uri": "http://127.0.0.1:8200", "prefix": "kv/apisix",
                 "token": "root"}),
    ("secrets", {"id": "aws/1", "access_key_id": "a", "secret_access_key": "s",
                 "endpoint_url": "http://127.0.0.1:4566"}),
    ("secrets", {"id": "gcp/1", "auth_file": "/etc/gcp.json"}),
    ("stream_routes", {"id": 1, "remote_addr": "127.0.0.1", "server_addr": "10.0.0.0/8",
                       "server_port": 9100, "sni": "a.test.com", "upstream": UP,
                       "protocol": {"name": "redis", "conf": {},
                                    "logger": [{"name": "syslog", "filter": []}]}}),
    ("stream_routes", {"remote_addr": "::1", "upstream_id": "u"}),
    ("plugin_metadata", {"id": "http-logger", "log_format": {"host": "$host"}}),
]


@pytest.mark.parametrize(("kind", "obj"), VALID,
                         ids=[f"{k}-{i}" for i, (k, _) in enumerate(VALID)])
def test_valid_samples_pass(kind, obj):
    assert validate(kind, obj) is None
    assert schema.check(kind, obj) is None


INVALID = [
    # type / length / pattern / enum / range / items
    ("routes", {"uri": 1, "upstream": UP},
     BAD + 'property "uri" validation failed: wrong type: expected string, got number'),
    ("routes", {"uri": "", "upstream": UP},
     BAD + 'property "uri" validation failed: string too short, expected at least 1, got 0'),
    ("routes", {"uri": "/" * 4097, "upstream": UP},
     BAD + 'property "uri" validation failed: string too long, expected at most 4096, '
     "got 4097"),
    ("routes", {"uri": "/a", "methods": ["GET", "FETCH"], "upstream": UP},
     BAD + 'property "methods" validation failed: failed to validate item 2: '
     "matches none of the enum values"),
    ("routes", {"uri": "/a", "status": 2, "upstream": UP},
     BAD + 'property "status" validation failed: matches none of the enum values'),
    ("routes", {"uri": "/a", "host": "a.*.foo.com", "upstream": UP},
     BAD + 'property "host" validation failed: failed to match pattern '
     '"^\\\\*$|^\\\\*?[0-9a-zA-Z-._\\\\[\\\\]:]+$" with "a.*.foo.com"'),
    ("routes", {"uris": [], "upstream": UP},
     BAD + 'property "uris" validation failed: expect array to have at least 1 items'),
    ("routes", {"uris": ["/a", "/b", "/a"], "upstream": UP},
     BAD + 'property "uris" validation failed: expected unique items but items 1 and 3 '
     "are equal"),
    ("routes", {"uri": "/a", "upstream": UP, "timeout": {"connect": 0, "send": 1, "read": 1}},
     BAD + 'property "timeout" validation failed: property "connect" validation failed: '
     "expected 0 to be greater than 0"),
    ("routes", {"uri": "/a", "upstream": UP, "timeout": {"connect": 1, "send": 1}},
     BAD + 'property "timeout" validation failed: property "read" is required'),
    ("routes", {"uri": "/a", "plugins": "x", "upstream": UP},
     BAD + 'property "plugins" validation failed: wrong type: expected object, got string'),
    ("routes", {"uri": "/a", "id": -100, "plugins": {}},
     BAD + 'property "id" validation failed: object matches none of the requireds'),
    ("routes", {"uri": "/a", "labels": {"k": ""}, "plugins": {}},
     BAD + 'property "labels" validation failed: failed to validate k (matching ".*"): '
     "string too short, expected at least 1, got 0"),
    ("routes", {"uri": "/a", "bogus": 1, "plugins": {}},
     BAD + "additional properties forbidden, found bogus"),
    ("routes", [], BAD + "wrong type: expected object, got table"),
    # route cross-field rules
    ("routes", {"uri": "/a", "host": "a.com", "hosts": ["b.com"], "plugins": {}},
     "only one of host or hosts is allowed"),
    ("routes", {"uri": "/a", "remote_addr": "1.1.1.1", "remote_addrs": ["1.1.1.1"],
                "plugins": {}},
     "only one of remote_addr or remote_addrs is allowed"),
    ("routes", {"upstream": UP}, BAD + "value should match only one schema, but matches none"),
    ("routes", {"uri": "/a", "uris": ["/b"], "upstream": UP},
     BAD + "value should match only one schema, but matches both schemas 1 and 2"),
    ("routes", {"uri": "/a"},
     BAD + 'object matches none of the requireds: ["plugins"] or ["upstream"] or '
     '["upstream_id"] or ["service_id"] or ["plugin_config_id"] or ["script"]'),
    ("routes", {"uri": "/a", "script": "local _M = {} return _M", "plugins": {}},
     BAD + "value wasn't supposed to match schema"),
    ("routes", {"uri": "/a", "script": "local _M = {} return _M", "plugin_config_id": 1},
     BAD + "value wasn't supposed to match schema"),
    ("routes", {"uri": "/a", "vars": [["arg_a", "=~", "1"]], "plugins": {}},
     "failed to validate the 'vars' expression: "),
    ("routes", {"uri": "/a", "filter_func": "function(vars) return true end", "plugins": {}},
     "failed to load 'filter_func' string: "),
    ("routes", {"uri": "/a", "remote_addr": "1.2.3.4/40", "plugins": {}},
     BAD + 'property "remote_addrs" validation failed: '),
    # upstream cross-field rules
    ("upstreams", {"type": "roundrobin"},
     BAD + "value should match only one schema, but matches none"),
    ("upstreams", {"nodes": {}, "service_name": "a", "discovery_type": "dns"},
     BAD + "value should match only one schema, but matches both schemas 1 and 2"),
    ("upstreams", {"nodes": [{"host": "127.0.0.1", "port": 65536, "weight": 1}]},
     BAD + 'property "nodes" validation failed: object matches none of the requireds'),
    ("upstreams", {"nodes": {"127.0.0.1:65536": 1}}, "invalid port 65536"),
    ("upstreams", {"nodes": {"[::1]:0": 1}}, "invalid port 0"),
    ("upstreams", {"nodes": [{"host": "::1", "port": 80, "weight": 1}]},
     "IPv6 address must be enclosed with '[' and ']'"),
    ("upstreams", {"nodes": {}, "pass_host": "rewrite"},
     "`upstream_host` can't be empty when `pass_host` is `rewrite`"),
    ("upstreams", {"nodes": {}, "pass_host": "rewrite", "upstream_host": ""},
     BAD + 'property "upstream_host" validation failed: failed to match pattern '
     '"^\\\\*?[0-9a-zA-Z-._\\\\[\\\\]:]+$" with ""'),
    ("upstreams", {"nodes": {}, "type": "chash"}, "missing key"),
    ("upstreams", {"nodes": {}, "type": "chash", "hash_on": "cookie", "key": "a b"},
     BAD + 'property "key" validation failed: failed to match pattern "^[a-zA-Z0-9-_]+$" '
     'with "a b"'),
    ("upstreams", {"nodes": {}, "type": "chash", "key": "http_x"},
     BAD + 'property "key" validation failed: failed to match pattern "^((uri|server_name|server_addr|request_uri|remote_port'
     '|remote_addr|query_string|host|hostname|mqtt_client_id)|arg_[0-9a-zA-z_-]+)$" '
     'with "http_x"'),
    ("upstreams", {"nodes": {}, "hash_on": "ip"},
     BAD + 'property "hash_on" validation failed: matches none of the enum values'),
    ("upstreams", {"nodes": {}, "tls": {"client_key": KEY}},
     BAD + 'property "tls" validation failed: failed to validate dependent schema for '
     '"client_key": property "client_cert" is required'),
    ("upstreams", {"nodes": {}, "tls": {"client_cert": CERT, "client_key": KEY,
                                        "client_cert_id": 1}},
     BAD + 'property "tls" validation failed: failed to validate dependent schema for '
     "\"client_cert\": value wasn't supposed to match schema"),
    ("upstreams", {"nodes": {}, "checks": {"passive": {}}},
     BAD + 'property "checks" validation failed: object matches none of the requireds: '
     '["active"] or ["active","passive"]'),
    ("upstreams", {"nodes": {}, "checks": {"active": {"healthy": {"successes": 255}}}},
     BAD + 'property "checks" validation failed: property "active" validation failed: '
     'property "healthy" validation failed: property "successes" validation failed: '
     "expected 255 to be at most 254"),
    ("routes", {"uri": "/a", "upstream": {"nodes": {}, "type": "chash"}}, "missing key"),
    ("services", {"upstream": {"nodes": {}, "pass_host": "rewrite"}},
     "`upstream_host` can't be empty when `pass_host` is `rewrite`"),
    ("services", {"host": "a.com"}, BAD + "additional properties forbidden, found host"),
    # consumers, credentials, groups
    ("consumers", {"username": "jack rose"},
     BAD + 'property "username" validation failed: failed to match pattern '
     '"^[a-zA-Z0-9_\\\\-]+$" with "jack rose"'),
    ("consumers", {"username": "a" * 101},
     BAD + 'property "username" validation failed: string too long, expected at most 100, '
     "got 101"),
    ("consumers", {"desc": "x"}, BAD + 'property "username" is required'),
    ("consumers", {"username": "a", "id": "a"}, BAD + "additional properties forbidden, found id"),
    ("credentials", {"plugins": {"key-auth": {}, "basic-auth": {}}},
     BAD + 'property "plugins" validation failed: expect object to have at most 1 properties'),
    ("consumer_groups", {"id": "g"}, BAD + 'property "plugins" is required'),
    # ssls
    ("ssls", {"cert": CERT, "key": KEY}, BAD + "then clause did not match"),
    ("ssls", {"type": "client", "cert": CERT}, BAD + "else clause did not match"),
    ("ssls", {"type": "proxy", "cert": CERT, "key": KEY, "sni": "a.com"},
     BAD + 'property "type" validation failed: matches none of the enum values'),
    ("ssls", {"sni": "a.com", "cert": CERT, "key": KEY, "ssl_protocols": ["TLSv1.0"]},
     BAD + 'property "ssl_protocols" validation failed: failed to validate item 1: '
     "matches none of the enum values"),
    ("ssls", {"sni": "a.com", "cert": CERT, "key": KEY, "client": {"depth": 1}},
     BAD + 'property "client" validation failed: property "ca" is required'),
    ("ssls", {"sni": "a.com", "cert": CERT, "key": KEY, "certs": [CERT], "keys": []},
     "mismatched number of certs and keys"),
    # the rest
    ("global_rules", {"id": 1}, BAD + 'property "plugins" is required'),
    ("global_rules", {"id": 1, "plugins": {}, "name": "x"},
     BAD + "additional properties forbidden, found name"),
    ("plugin_configs", {"plugins": {}}, BAD + 'property "id" is required'),
    ("protos", {"id": 1, "content": ""},
     BAD + 'property "content" validation failed: string too short, expected at least 1, '
     "got 0"),
    ("secrets", {"id": "vault/1", "uri": "127.0.0.1:8200", "prefix": "p", "token": "t"},
     BAD + 'property "uri" validation failed: failed to match pattern '
     '"^[^\\\\/]+:\\\\/\\\\/([\\\\da-zA-Z.-]+|\\\\[[\\\\da-fA-F:]+\\\\])(:\\\\d+)?" '
     'with "127.0.0.1:8200"'),
    ("secrets", {"id": "aws/1", "access_key_id": "a"},
     BAD + 'property "secret_access_key" is required'),
    ("secrets", {"id": "gcp/1"}, BAD + "value should match only one schema, but matches none"),
    ("stream_routes", {"server_port": 0, "upstream": UP},
     BAD + 'property "server_port" validation failed: expected 0 to be at least 1'),
    ("stream_routes", {"remote_addr": "1.2.3", "upstream": UP},
     BAD + 'property "remote_addr" validation failed: object matches none of the requireds'),
    ("stream_routes", {"protocol": {"conf": {}}},
     BAD + 'property "protocol" validation failed: property "name" is required'),
    ("stream_routes", {"upstream": {"nodes": {}, "type": "chash"}}, "missing key"),
    ("plugin_metadata", "x", BAD + "wrong type: expected object, got string"),
]


@pytest.mark.parametrize(("kind", "obj", "message"), INVALID,
                         ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(INVALID)])
def test_invalid_objects_get_apisix_messages(kind, obj, message):
    got = validate(kind, obj)
    assert got is not None
    if message.endswith(": "):
        assert got.startswith(message)
    else:
        assert got == message


def test_check_drops_the_admin_lead_for_the_config_sources():
    assert schema.check("routes", {"uri": 1, "upstream": UP}) == (
        'property "uri" validation failed: wrong type: expected string, got number')
    assert schema.check("routes", {"uri": "/a", "bogus": 1, "upstream": UP}) == (
        "additional properties forbidden, found bogus")
    assert schema.check("upstreams", {"type": "chash", "nodes": {}}) == "missing key"
    assert schema.check("routes", {"uri": "/a", "host": "a", "hosts": ["b"],
                                   "upstream": UP}) == "only one of host or hosts is allowed"
    assert schema.check("no_such_kind", {}) is None
    assert schema.check("no_such_kind", 1) is not None


def test_secret_manager_from_argument_or_id():
    vault = {"uri": "http://v:8200", "prefix": "p", "token": "t"}
    assert validate("secrets", vault) is None               # matches one manager's shape
    assert validate("secrets", vault, manager="aws") == (
        BAD + 'property "access_key_id" is required')
    assert validate("secrets", {"id": "vault/1", **vault}) is None
    assert schema.check("secrets", vault, manager="gcp") == (
        "value should match only one schema, but matches none")


def test_message_helpers():
    assert lua_type(True) == "boolean"
    assert lua_type(1.5) == "number"
    assert lua_type({}) == "table"
    assert lua_type(None) == "userdata"
    assert quote('a"b\\c') == '"a\\"b\\\\c"'


def test_every_config_kind_has_a_schema():
    from gateway.master.yaml_source import KINDS
    assert set(KINDS) | {"credentials"} == set(schema.SCHEMAS)
