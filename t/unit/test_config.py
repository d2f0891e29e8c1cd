"""Unit tests for gateway.config: loading, merging, env substitution, validation, helpers."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

import gateway
from gateway import config
from gateway.config import ConfigError

REPO = Path(__file__).resolve().parents[2]
DEFAULTS_FILE = REPO / "conf" / "config-default.yaml"


def load_text(tmp_path: Path, text: str) -> dict[str, Any]:
    """Load settings from a prefix whose conf/config.yaml holds ``text``."""
    (tmp_path / "conf").mkdir(exist_ok=True)
    (tmp_path / "conf" / "config.yaml").write_text(textwrap.dedent(text))
    return config.load(str(tmp_path))


def load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text)
    return str(info.value)


@pytest.fixture(scope="module")
def defaults() -> dict[str, Any]:
    return yaml.safe_load(DEFAULTS_FILE.read_text())


# --- the shipped files --------------------------------------------------------------------


def test_shipped_config_is_standalone(defaults: dict[str, Any]) -> None:
    conf = config.load(str(REPO))
    assert config.config_provider(conf) == "yaml"
    assert conf["deployment"]["role"] == "data_plane"
    assert config.listen_addresses(conf) == [("0.0.0.0", 9080), ("::", 9080)]
    assert conf["plugins"] == defaults["plugins"]


def test_defaults_pass_their_own_validation(defaults: dict[str, Any]) -> None:
    config._check(defaults, defaults, "")


def test_defaults_values(defaults: dict[str, Any]) -> None:
    conf = config.load("/nonexistent-prefix")
    assert conf["apisix"]["node_listen"] == [9080]
    assert conf["apisix"]["server_version"] is None
    assert conf["apisix"]["ssl"]["listen"] == [{"port": 9443, "enable_http3": False}]
    assert conf["nginx_config"]["worker_shutdown_timeout"] == "240s"
    assert conf["nginx_config"]["event"]["worker_connections"] == 10620
    assert conf["nginx_config"]["http"]["upstream"] == {
        "keepalive": 320, "keepalive_requests": 1000, "keepalive_timeout": "60s"}
    assert conf["nginx_config"]["http"]["underscores_in_headers"] == "on"
    assert conf["deployment"]["admin"]["admin_listen"] == {"ip": "0.0.0.0", "port": 9180}
    assert conf["deployment"]["etcd"]["host"] == ["http://127.0.0.1:2379"]
    assert conf["plugins"][0] == "real-ip" and conf["plugins"][-1] == "ext-plugin-post-resp"
    assert "key-auth" in conf["plugins"] and "skywalking" not in conf["plugins"]
    assert config.config_provider(conf) == "etcd"


def _paths(tree: Any, path: str = ""):
    if isinstance(tree, dict) and not config._is_open(path):
        for key, value in tree.items():
            sub = f"{path}.{key}" if path else key
            yield sub, value
            if sub not in config._RULES:
                yield from _paths(value, sub)


def test_every_null_default_has_a_rule(defaults: dict[str, Any]) -> None:
    unruled = [path for path, value in _paths(defaults)
               if value is None and path not in config._RULES and not config._is_open(path)]
    assert unruled == []


def test_every_rule_names_a_default(defaults: dict[str, Any]) -> None:
    known = {path for path, _ in _paths(defaults)}
    assert sorted(set(config._RULES) - known) == []


def test_every_default_key_has_a_comment(defaults: dict[str, Any]) -> None:
    """Each key of config-default.yaml outside free-form parts is preceded by a comment line."""
    stack: list[tuple[int, str]] = []
    missing = []
    previous = ""
    for line in DEFAULTS_FILE.read_text().splitlines():
        match = re.match(r"^( *)([A-Za-z_][\w.-]*):", line)
        if match:
            indent, key = len(match.group(1)), match.group(2)
            stack = [(i, k) for i, k in stack if i < indent] + [(indent, key)]
            path = ".".join(k for _, k in stack)
            if path in dict(_paths(defaults)) and not previous.lstrip().startswith("#"):
                missing.append(path)
        if line.strip():
            previous = line
    assert missing == []


# --- merging ------------------------------------------------------------------------------


def test_missing_and_empty_user_file_give_defaults(tmp_path: Path, defaults) -> None:
    assert config.load(str(tmp_path)) == defaults
    assert load_text(tmp_path, "") == defaults
    assert load_text(tmp_path, "# only a comment\n") == defaults


def test_explicit_config_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no-such.yaml: no such file"):
        config.load(str(tmp_path), str(tmp_path / "no-such.yaml"))


def test_explicit_config_path_is_used(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("apisix:\n  node_listen: 1984\n")
    assert config.load(str(tmp_path), str(path))["apisix"]["node_listen"] == 1984


def test_dicts_merge_lists_and_scalars_replace(tmp_path: Path, defaults) -> None:
    conf = load_text(tmp_path, """
        apisix:
          enable_ipv6: false
          ssl:
            enable: false
        nginx_config:
          http:
            upstream:
              keepalive: 10
            real_ip_from: [10.0.0.0/8]
        plugins: [key-auth, limit-count]
    """)
    assert conf["apisix"]["enable_ipv6"] is False
    assert conf["apisix"]["ssl"]["enable"] is False
    assert conf["apisix"]["ssl"]["listen"] == defaults["apisix"]["ssl"]["listen"]
    assert conf["apisix"]["node_listen"] == [9080]
    assert conf["nginx_config"]["http"]["upstream"] == {
        "keepalive": 10, "keepalive_requests": 1000, "keepalive_timeout": "60s"}
    assert conf["nginx_config"]["http"]["real_ip_from"] == ["10.0.0.0/8"]
    assert conf["plugins"] == ["key-auth", "limit-count"]
    assert conf["stream_plugins"] == defaults["stream_plugins"]


def test_empty_section_keeps_defaults_and_null_unsets(tmp_path: Path, defaults) -> None:
    conf = load_text(tmp_path, """
        apisix:
          # node_listen: 1984
        deployment:
          admin:
            admin_key: null
    """)
    assert conf["apisix"] == defaults["apisix"]
    assert conf["deployment"]["admin"]["admin_key"] is None
    assert conf["deployment"]["admin"]["allow_admin"] == ["127.0.0.0/24"]


def test_merge_does_not_modify_inputs() -> None:
    base = {"a": {"b": 1, "c": [1]}, "d": 2}
    override = {"a": {"b": 3}, "e": None}
    merged = config._merge(base, override)
    assert merged == {"a": {"b": 3, "c": [1]}, "d": 2, "e": None}
    assert base == {"a": {"b": 1, "c": [1]}, "d": 2} and override == {"a": {"b": 3}, "e": None}


def test_defaults_copy_in_prefix_wins(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config-default.yaml").write_text(
        DEFAULTS_FILE.read_text().replace("worker_connections: 10620", "worker_connections: 7"))
    assert config.load(str(tmp_path))["nginx_config"]["event"]["worker_connections"] == 7


# --- environment substitution -------------------------------------------------------------


def test_substitute_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_PORT", "1984")
    monkeypatch.setenv("GW_EMPTY", "")
    monkeypatch.delenv("GW_UNSET", raising=False)
    assert config.substitute_env("port: ${{GW_PORT}}") == "port: 1984"
    assert config.substitute_env("port: ${{ GW_PORT }}") == "port: 1984"
    assert config.substitute_env("a: ${{GW_UNSET:=x y}}") == "a: x y"
    assert config.substitute_env("a: ${{ GW_UNSET := 7 }}") == "a: 7"
    assert config.substitute_env("a: ${{GW_UNSET:=}}") == "a: "
    assert config.substitute_env("a: ${{GW_PORT:=1}}") == "a: 1984"
    assert config.substitute_env("a: '${{GW_EMPTY}}'") == "a: ''"
    assert config.substitute_env("a: ${{GW_PORT}}-${{GW_PORT}}") == "a: 1984-1984"
    assert config.substitute_env("a: ${GW_PORT} $GW_PORT") == "a: ${GW_PORT} $GW_PORT"


def test_substitute_env_unset_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GW_UNSET", raising=False)
    with pytest.raises(ConfigError) as info:
        config.substitute_env("a: 1\nb: ${{GW_UNSET}}\n", "conf/x.yaml")
    assert str(info.value) == "conf/x.yaml:2: environment variable GW_UNSET is not set"


def test_substitute_env_skips_comment_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GW_UNSET", raising=False)
    text = "# port: ${{GW_UNSET}}\n  #  ${{GW_UNSET}}\n"
    assert config.substitute_env(text) == text


def test_load_substitutes_env_in_user_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GW_PORT", "1984")
    monkeypatch.delenv("GW_UNSET", raising=False)
    conf = load_text(tmp_path, """
        apisix:
          node_listen: ${{GW_PORT}}
        deployment:
          etcd:
            prefix: ${{GW_UNSET:=/custom}}
    """)
    assert conf["apisix"]["node_listen"] == 1984
    assert conf["deployment"]["etcd"]["prefix"] == "/custom"
    message = load_error(tmp_path, "apisix:\n  node_listen: ${{GW_UNSET}}\n")
    assert message == f"{tmp_path}/conf/config.yaml:2: environment variable GW_UNSET is not set"


# --- validation messages ------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("apisix:\n  node_listen: [9080, foo]\n", "apisix.node_listen[1]: expected int or {ip, port}"),
    ("apisix:\n  node_listen: [9080, {ip: 127.0.0.1}]\n",
     "apisix.node_listen[1]: expected int or {ip, port}"),
    ("apisix:\n  node_listen: [{port: 1, foo: 2}]\n", "apisix.node_listen[0].foo: unknown key"),
    ("apisix:\n  node_listen: [{port: 1, ip: 1}]\n", "apisix.node_listen[0].ip: expected string"),
    ("apisix:\n  node_listen: [{port: 1, enable_http2: 1}]\n",
     "apisix.node_listen[0].enable_http2: expected bool"),
    ("apisix:\n  node_listen: [70000]\n",
     "apisix.node_listen[0]: expected a port number (1-65535)"),
    ("apisix:\n  node_listen: [{port: 0}]\n",
     "apisix.node_listen[0].port: expected a port number (1-65535)"),
    ("apisix:\n  node_listen: '9080'\n",
     "apisix.node_listen: expected int or a list of ports and {ip, port}"),
    ("apisix:\n  foo: 1\n", "apisix.foo: unknown key"),
    ("foo: 1\n", "foo: unknown key"),
    ("nginx_config:\n  http:\n    upstream:\n      bar: 1\n",
     "nginx_config.http.upstream.bar: unknown key"),
    ("nginx_config:\n  worker_processes: 0\n",
     'nginx_config.worker_processes: expected "auto" or a positive int'),
    ("nginx_config:\n  worker_processes: many\n",
     'nginx_config.worker_processes: expected "auto" or a positive int'),
    ("deployment:\n  role: edge\n",
     "deployment.role: expected one of traditional, data_plane, control_plane"),
    ("deployment:\n  role_data_plane:\n    config_provider: xds\n",
     "deployment.role_data_plane.config_provider: expected one of etcd, yaml, json"),
    ("apisix:\n  enable_ipv6: 'yes'\n", "apisix.enable_ipv6: expected bool"),
    ("nginx_config:\n  event:\n    worker_connections: true\n",
     "nginx_config.event.worker_connections: expected int"),
    ("nginx_config:\n  error_log: 5\n", "nginx_config.error_log: expected string"),
    ("nginx_config:\n  event: 5\n", "nginx_config.event: expected a mapping"),
    ("nginx_config:\n  http:\n    real_ip_from: 127.0.0.1\n",
     "nginx_config.http.real_ip_from: expected a list"),
    ("plugins: [key-auth, 5]\n", "plugins[1]: expected string"),
    ("deployment:\n  etcd:\n    host: [5]\n", "deployment.etcd.host[0]: expected string"),
    ("deployment:\n  etcd:\n    host: []\n", "deployment.etcd.host: expected at least one entry"),
    ("deployment:\n  admin:\n    admin_key: [{name: a, key: b, role: root}]\n",
     "deployment.admin.admin_key[0].role: expected one of admin, viewer"),
    ("deployment:\n  admin:\n    admin_key: [{name: a, role: admin}]\n",
     "deployment.admin.admin_key[0].key: required"),
    ("deployment:\n  admin:\n    admin_key: [{name: a, key: 123, role: admin}]\n",
     "deployment.admin.admin_key[0].key: expected string"),
    ("nginx_config:\n  http:\n    keepalive_timeout: soon\n",
     'nginx_config.http.keepalive_timeout: expected a duration such as "60s" or "500ms"'),
    ("nginx_config:\n  http:\n    client_max_body_size: 1t\n",
     'nginx_config.http.client_max_body_size: expected a size such as 0, "8k" or "1m"'),
    ("nginx_config:\n  http:\n    large_client_header_buffers: 8k\n",
     'nginx_config.http.large_client_header_buffers: expected "<number> <size>" such as "4 8k"'),
    ("nginx_config:\n  http:\n    underscores_in_headers: maybe\n",
     'nginx_config.http.underscores_in_headers: expected "on" or "off"'),
    ("apisix:\n  status: {ip: 127.0.0.1, port: 7085, tls: true}\n",
     "apisix.status.tls: unknown key"),
    ("apisix:\n  server_version: 3.9\n", "apisix.server_version: expected string"),
    ("apisix:\n  ssl:\n    listen: 9443\n",
     "apisix.ssl.listen: expected int or a list of ports and {ip, port}"),
])
def test_error_messages(tmp_path: Path, text: str, message: str) -> None:
    assert load_error(tmp_path, text) == message


def test_first_error_in_file_order_is_reported(tmp_path: Path) -> None:
    text = "nginx_config:\n  zzz: 1\napisix:\n  aaa: 1\n"
    assert load_error(tmp_path, text) == "nginx_config.zzz: unknown key"
    assert load_error(tmp_path, text) == "nginx_config.zzz: unknown key"


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert load_error(tmp_path, "- a\n- b\n").endswith(
        "config.yaml: the top level must be a mapping of sections")


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    message = load_error(tmp_path, "apisix:\n  node_listen: [9080\nfoo: 1\n")
    assert re.match(rf"{re.escape(str(tmp_path))}/conf/config.yaml:\d+:\d+: ", message), message


def test_accepted_value_forms(tmp_path: Path) -> None:
    conf = load_text(tmp_path, """
        apisix:
          node_listen: [9080, {ip: 127.0.0.1, port: 9081, enable_http2: true}, {port: 9082}]
          server_version: 3.9.0
          status: {ip: 127.0.0.1, port: 7085}
          trusted_addresses: [127.0.0.1, 10.0.0.0/8]
          dns_resolver: [1.1.1.1]
          dns_resolver_valid: 30
          ssl:
            listen: [{ip: 127.0.0.1, port: 9443, enable_http3: true}, 9444]
        nginx_config:
          worker_processes: 4
          worker_shutdown_timeout: 3
          http:
            underscores_in_headers: on
            real_ip_recursive: "on"
            keepalive_timeout: 500ms
            client_max_body_size: 8m
            client_header_buffer_size: 2k
            large_client_header_buffers: 8 16k
        deployment:
          role: control_plane
          admin:
            admin_key: [{name: admin, key: abc, role: admin}, {name: v, key: d, role: viewer}]
            allow_admin: null
          etcd:
            user: root
            password: secret
            tls: {cert: /a.crt, key: /a.key, verify: false, sni: etcd.local}
    """)
    assert conf["nginx_config"]["http"]["underscores_in_headers"] is True
    assert config.config_provider(conf) == "etcd"


def test_free_form_sections_are_accepted(tmp_path: Path, defaults) -> None:
    conf = load_text(tmp_path, """
        apisix:
          stream_proxy:
            tcp: [9100, {addr: "127.0.0.1:9101", tls: true}]
            udp: [9200]
        nginx_config:
          main_configuration_snippet: "env FOO;"
          http_configuration_snippet: |
            server { listen 1980; }
          custom_thing_snippet: x
          meta:
            lua_shared_dict: {my-dict: 1m}
          http:
            lua_shared_dict: {my-cache: 10m}
          stream:
            lua_shared_dict: {my-stream: 1m}
        plugin_attr:
          my-plugin: {anything: [1, 2], nested: {deep: true}}
          prometheus:
            export_addr: {port: 9092}
            extra: 1
        discovery:
          dns: {servers: ["127.0.0.1:53"]}
        ext-plugin:
          cmd: [ls, -l]
        wasm:
          plugins: [{name: wasm_log, priority: 7999, file: t/wasm/log/main.go.wasm}]
        xrpc:
          protocols: [{name: redis}]
    """)
    prometheus = conf["plugin_attr"]["prometheus"]
    assert prometheus["export_addr"] == {"ip": "127.0.0.1", "port": 9092}
    assert prometheus["export_uri"] == "/apisix/prometheus/metrics"
    assert conf["plugin_attr"]["my-plugin"]["nested"] == {"deep": True}
    assert conf["nginx_config"]["http"]["lua_shared_dict"]["my-cache"] == "10m"
    assert "plugin-limit-count" in conf["nginx_config"]["http"]["lua_shared_dict"]
    assert conf["discovery"] == {"dns": {"servers": ["127.0.0.1:53"]}}


# --- helpers ------------------------------------------------------------------------------


def with_listen(node_listen: Any, ipv6: bool = False) -> dict[str, Any]:
    return {"apisix": {"node_listen": node_listen, "enable_ipv6": ipv6}}


@pytest.mark.parametrize("node_listen, ipv6, expected", [
    (9080, False, [("0.0.0.0", 9080)]),
    ([9080, 9081], False, [("0.0.0.0", 9080), ("0.0.0.0", 9081)]),
    ([{"port": 9080}, {"ip": "127.0.0.1", "port": 9081}], False,
     [("0.0.0.0", 9080), ("127.0.0.1", 9081)]),
    ([9080, {"ip": "127.0.0.1", "port": 9081}], True,
     [("0.0.0.0", 9080), ("::", 9080), ("127.0.0.1", 9081)]),
    ([9080, {"ip": "0.0.0.0", "port": 9080}, {"ip": "[::1]", "port": 9082}], True,
     [("0.0.0.0", 9080), ("::", 9080), ("::1", 9082)]),
    ([9080, 9081], True, [("0.0.0.0", 9080), ("::", 9080), ("0.0.0.0", 9081), ("::", 9081)]),
])
def test_listen_addresses(node_listen: Any, ipv6: bool, expected: list) -> None:
    assert config.listen_addresses(with_listen(node_listen, ipv6)) == expected


def test_ssl_listen_addresses(tmp_path: Path) -> None:
    conf = config.load(str(tmp_path))
    assert config.ssl_listen_addresses(conf) == [("0.0.0.0", 9443), ("::", 9443)]
    conf["apisix"]["ssl"]["enable"] = False
    assert config.ssl_listen_addresses(conf) == []


def test_worker_count() -> None:
    assert config.worker_count({"nginx_config": {"worker_processes": 3}}) == 3
    auto = config.worker_count({"nginx_config": {"worker_processes": "auto"}})
    assert 1 <= auto <= (os.cpu_count() or 1)


@pytest.mark.parametrize("value, seconds", [
    (60, 60.0), (0, 0.0), (1.5, 1.5), ("60", 60.0), ("60s", 60.0), ("500ms", 0.5),
    ("2m", 120.0), ("1h", 3600.0), ("1d", 86400.0), ("1m30s", 90.0), (" 10s ", 10.0),
])
def test_parse_duration(value: Any, seconds: float) -> None:
    assert config.parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "s", "10x", "ten seconds", "-1s", -1, True, None, [1],
                                   float("nan"), "1.5.2s"])
def test_parse_duration_rejects_junk(value: Any) -> None:
    with pytest.raises(ConfigError):
        config.parse_duration(value)


@pytest.mark.parametrize("value, size", [
    (0, 0), (4096, 4096), ("4096", 4096), ("8k", 8192), ("8K", 8192), ("1m", 1048576),
    ("1G", 1073741824),
])
def test_parse_size(value: Any, size: int) -> None:
    assert config.parse_size(value) == size


@pytest.mark.parametrize("value", ["", "k", "1t", "1.5m", -1, True, None, "8 k"])
def test_parse_size_rejects_junk(value: Any) -> None:
    with pytest.raises(ConfigError):
        config.parse_size(value)


def test_parse_buffers() -> None:
    assert config.parse_buffers("4 8k") == (4, 8192)
    for junk in ("8k", "0 8k", "4 0", "4 8k 1", 4, "a 8k"):
        with pytest.raises(ConfigError):
            config.parse_buffers(junk)


def test_resolve_path() -> None:
    assert config.resolve_path("/srv/gw", "logs/error.log") == "/srv/gw/logs/error.log"
    assert config.resolve_path("/srv/gw", "/dev/stderr") == "/dev/stderr"


@pytest.mark.parametrize("role, traditional, data_plane, expected", [
    ("traditional", "etcd", "yaml", "etcd"),
    ("traditional", "yaml", "etcd", "yaml"),
    ("data_plane", "etcd", "yaml", "yaml"),
    ("data_plane", "etcd", "json", "json"),
    ("data_plane", "yaml", "etcd", "etcd"),
    ("control_plane", "yaml", "yaml", "etcd"),
])
def test_config_provider(role: str, traditional: str, data_plane: str, expected: str) -> None:
    conf = {"deployment": {"role": role,
                           "role_traditional": {"config_provider": traditional},
                           "role_data_plane": {"config_provider": data_plane},
                           "role_control_plane": {"config_provider": "etcd"}}}
    assert config.config_provider(conf) == expected


def test_server_header(tmp_path: Path) -> None:
    conf = config.load(str(tmp_path))
    assert config.server_header(conf) == b"APISIX/" + gateway.APISIX_VERSION.encode()
    conf["apisix"]["server_version"] = "3.9.0"
    assert config.server_header(conf) == b"APISIX/3.9.0"
    conf["apisix"]["enable_server_tokens"] = False
    assert config.server_header(conf) == b"APISIX"
