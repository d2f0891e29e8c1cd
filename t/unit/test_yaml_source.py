"""Parsing of standalone conf/apisix.yaml (pure logic)."""

import pytest

from gateway.master.yaml_source import StandaloneError, parse

ROUTE = """
routes:
  - id: 1
    uri: /hello
    upstream:
      nodes:
        "127.0.0.1:1980": 1
      type: roundrobin
"""


def test_objects_are_keyed_like_etcd():
    objects, problems = parse(ROUTE + "#END\n")
    assert problems == []
    assert objects["/apisix/routes/1"]["uri"] == "/hello"


def test_missing_end_marker_rejects_the_file():
    with pytest.raises(StandaloneError, match="#END"):
        parse(ROUTE)


def test_routes_without_id_get_one_and_other_kinds_need_one():
    objects, problems = parse("routes:\n  - uri: /a\n    upstream_id: u\n"
                              "upstreams:\n  - nodes: {'127.0.0.1:1980': 1}\n#END")
    assert "/apisix/routes/1" in objects
    assert len(problems) == 1 and "upstreams[0]" in problems[0] and "missing id" in problems[0]


def test_invalid_items_are_skipped_with_the_reason():
    objects, problems = parse("routes:\n  - id: a\n    uri: /a\n    upstream_id: u\n    bogus: 1\n"
                              "  - id: b\n    uri: /b\n    upstream_id: u\n#END\n")
    assert list(objects) == ["/apisix/routes/b"]
    assert "routes[0]" in problems[0] and "bogus" in problems[0]


def test_env_substitution_and_yaml_errors(monkeypatch):
    monkeypatch.setenv("UPSTREAM_PORT", "1981")
    objects, _ = parse('routes:\n  - id: 1\n    uri: /a\n    upstream:\n      nodes:\n'
                       '        "127.0.0.1:${{UPSTREAM_PORT}}": 1\n#END\n')
    assert objects["/apisix/routes/1"]["upstream"]["nodes"] == {"127.0.0.1:1981": 1}
    with pytest.raises(StandaloneError, match="invalid YAML"):
        parse("routes: [\n#END\n")
    with pytest.raises(StandaloneError, match="NOT_SET_ANYWHERE"):
        parse("routes:\n  - uri: ${{NOT_SET_ANYWHERE}}\n#END\n")


def test_consumer_credentials_and_plugins_list():
    from gateway.master.yaml_source import parse
    objects, problems = parse("""consumers:
  - username: jack
  - id: jack/credentials/c1
    plugins:
      key-auth: {key: k1}
  - id: jack/credentials/
    plugins:
      key-auth: {key: k2}
plugins:
  - name: key-auth
#END
""")
    assert objects["/apisix/consumers/jack/credentials/c1"]["plugins"] == {"key-auth": {"key": "k1"}}
    assert objects["/apisix/plugins"] == [{"name": "key-auth"}]
    assert len(problems) == 1 and "invalid credential id" in problems[0]
