"""The plugin registry (gateway.core.plugins) and the chain compiler (gateway.worker.plugin_chain)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import gevent
import pytest

from gateway.core import plugins
from gateway.worker.plugin_chain import ChainBuilder, merge_plugins
from gateway.worker.plugin_runner import Parked
from gateway.worker.table import Table

KEY_AUTH = '''
NAME = "key-auth"
PRIORITY = 2500
VERSION = 0.1
TYPE = "auth"
SCHEMA = {"type": "object", "properties": {
    "header": {"type": "string", "default": "apikey"},
    "query": {"type": "string", "default": "apikey"},
    "hide_credentials": {"type": "boolean", "default": False}}}
CONSUMER_SCHEMA = {"type": "object", "properties": {"key": {"type": "string"}},
                   "required": ["key"]}
ENCRYPT_FIELDS = ["key"]

def rewrite(conf, ctx):
    return None
'''

LIMIT = '''
NAME = "limit-count"
PRIORITY = 1002
VERSION = 0.1
SCHEMA = {"type": "object", "properties": {
    "count": {"type": "integer", "exclusiveMinimum": 0},
    "time_window": {"type": "integer", "exclusiveMinimum": 0},
    "policy": {"type": "string", "enum": ["local", "redis"], "default": "local"}},
    "required": ["count", "time_window"]}
METADATA_SCHEMA = {"type": "object", "properties": {"limit_header": {"type": "string"}}}

def check_schema(conf, schema_type):
    if schema_type == "schema" and conf["count"] > 1000000:
        return "count too big"
    return None

def access(conf, ctx):
    return None
'''

SAME_PRIORITY = '''
NAME = "{name}"
PRIORITY = 1002
VERSION = 0.1
SCHEMA = {{"type": "object"}}

def log(conf, ctx):
    pass
'''


def write(directory: Path, name: str, text: str) -> None:
    (directory / plugins.module_file(name)).write_text(textwrap.dedent(text))


@pytest.fixture
def pdir(tmp_path: Path) -> Path:
    write(tmp_path, "key-auth", KEY_AUTH)
    write(tmp_path, "limit-count", LIMIT)
    write(tmp_path, "aaa-same", SAME_PRIORITY.format(name="aaa-same"))
    return tmp_path


def conf_for(pdir: Path, *names: str) -> dict:
    return {"apisix": {"extra_plugin_paths": [str(pdir)]}, "plugins": list(names)}


@pytest.fixture
def registry(pdir: Path) -> plugins.PluginSet:
    return plugins.reload(conf_for(pdir, "limit-count", "key-auth", "aaa-same", "echo",
                                   "proxy-rewrite", "fault-injection", "no-such-plugin"))


# ------------------------------------------------------------------ loading
def test_names_are_sorted_by_priority_then_name(registry):
    assert registry.names() == ["fault-injection", "key-auth", "proxy-rewrite", "aaa-same",
                                "limit-count", "echo"]
    assert registry.get("key-auth").NAME == "key-auth"
    assert registry.get("no-such-plugin") is None


def test_names_without_a_module_are_skipped_with_one_warning(pdir, caplog):
    with caplog.at_level("WARNING", logger="gateway"):
        plugins.reload(conf_for(pdir, "key-auth", "nope-1", "nope-2"))
    lines = [r.getMessage() for r in caplog.records if "without a module" in r.getMessage()]
    assert lines == ["plugins enabled in config.yaml without a module yet, skipped: "
                     "nope-1, nope-2"]


@pytest.mark.parametrize("text, reason", [
    ("NAME = 'bad'\nPRIORITY = 1\nVERSION = 0.1\n", "missing required attribute SCHEMA"),
    ("NAME = 'bad'\nVERSION = 0.1\nSCHEMA = {}\n", "missing required attribute PRIORITY"),
    ("NAME = 'other'\nPRIORITY = 1\nVERSION = 0.1\nSCHEMA = {}\n", "NAME is 'other'"),
    ("NAME = 'bad'\nPRIORITY = '1'\nVERSION = 0.1\nSCHEMA = {}\n", "PRIORITY must be an int"),
    ("NAME = 'bad'\nPRIORITY = 1\nVERSION = 0.1\n"
     "SCHEMA = {'properties': {'_meta': {}}}\n", "found forbidden '_meta' field"),
    ("NAME = 'bad'\nPRIORITY = 1\nVERSION = 0.1\nSCHEMA = {'type': 'nonsense'}\n",
     "SCHEMA is not a valid JSON Schema"),
    ("NAME = 'bad'\nPRIORITY = 1\nVERSION = 0.1\nSCHEMA = {}\nrewrite = 3\n",
     "rewrite is not a function"),
    ("import not_a_module_anywhere\n", "failed to load: ModuleNotFoundError"),
    ("def broken(:\n", "failed to load: SyntaxError"),
])
def test_a_broken_module_fails_loudly_with_its_name(tmp_path, text, reason):
    (tmp_path / "bad.py").write_text(text)
    with pytest.raises(plugins.PluginError) as err:
        plugins.reload(conf_for(tmp_path, "bad"))
    assert str(err.value).startswith("plugin bad (")
    assert reason in str(err.value)


def test_reload_reimports_an_edited_module(pdir):
    first = plugins.reload(conf_for(pdir, "aaa-same"))
    assert first.plugin("aaa-same").priority == 1002
    write(pdir, "aaa-same", SAME_PRIORITY.format(name="aaa-same").replace("1002", "7"))
    second = plugins.reload(conf_for(pdir, "aaa-same"))
    assert second.plugin("aaa-same").priority == 7
    assert plugins.current() is second


def test_bundled_plugins_load_from_the_plugins_package():
    registry = plugins.load({"plugins": ["proxy-rewrite", "echo"]})
    assert registry.get("proxy-rewrite").__name__ == "plugins.proxy_rewrite"
    assert registry.names() == ["proxy-rewrite", "echo"]


def test_the_default_list_loads(caplog):
    from gateway import config
    conf = config.load("/nonexistent-prefix")
    registry = plugins.load(conf)
    assert {"echo", "proxy-rewrite", "fault-injection"} <= set(registry.names())


# ------------------------------------------------------------------ checks
def test_check_plugins_messages(registry):
    check = registry.check_plugins
    assert check({"key-auth": {}}) is None
    assert check({"nope": {}}) == "unknown plugin [nope]"
    assert check({"key-auth": 1}) == "invalid plugin conf 1 for plugin [key-auth]"
    assert check({"key-auth": "x"}) == 'invalid plugin conf "x" for plugin [key-auth]'
    assert check({"key-auth": {"header": 1}}) == (
        "failed to check the configuration of plugin key-auth err: property \"header\" "
        "validation failed: wrong type: expected string, got number")
    assert check({"key-auth": {}}, "consumer") == (
        'failed to check the configuration of plugin key-auth err: property "key" is required')
    assert check({"key-auth": {"key": 1}}, "consumer") == (
        "failed to check the configuration of plugin key-auth err: property \"key\" "
        "validation failed: wrong type: expected string, got number")
    assert check({"limit-count": {"count": 2}}) == (
        "failed to check the configuration of plugin limit-count err: property "
        "\"time_window\" is required")
    assert check({"limit-count": {"count": 2000000, "time_window": 1}}) == (
        "failed to check the configuration of plugin limit-count err: count too big")


def test_check_fills_defaults_in_place(registry):
    confs = {"key-auth": {"header": "x"}, "limit-count": {"count": 1, "time_window": 2}}
    assert registry.check_plugins(confs) is None
    assert confs == {"key-auth": {"header": "x", "query": "apikey", "hide_credentials": False},
                     "limit-count": {"count": 1, "time_window": 2, "policy": "local"}}


def test_meta_is_validated_for_every_plugin(registry):
    check = registry.check_plugins
    prefix = "failed to check the configuration of plugin key-auth err: "
    assert check({"key-auth": {"_meta": {"disable": "yes"}}}) == prefix + (
        'property "_meta" validation failed: property "disable" validation failed: '
        "wrong type: expected boolean, got string")
    assert check({"key-auth": {"_meta": {"priority": 1.5}}}) == prefix + (
        'property "_meta" validation failed: property "priority" validation failed: '
        "wrong type: expected integer, got number")
    assert check({"key-auth": {"_meta": {"error_response": 1}}}) == prefix + (
        'property "_meta" validation failed: property "error_response" validation failed: '
        "value should match only one schema, but matches none")
    assert check({"key-auth": {"_meta": {"other": 1}}}) == prefix + (
        'property "_meta" validation failed: additional properties forbidden, found other')
    assert check({"key-auth": {"_meta": {"disable": True, "priority": 3,
                                         "error_response": {"message": "no"},
                                         "filter": [["arg_a", "==", "1"]],
                                         "pre_function": "def f(conf, ctx):\n    pass\n"}}}) \
        is None
    assert check({"key-auth": {"_meta": {"filter": [["arg_a", "=", "1"]]}}}) == (
        "failed to validate the 'vars' expression: invalid operator '=' in expression "
        "['arg_a', '=', '1']")
    assert check({"key-auth": {"_meta": {"pre_function": "x = 1"}}}) == (
        "failed to load _meta.pre_function in plugin key-auth: the source must define a "
        "function")
    assert check({"key-auth": {"_meta": {"pre_function": "def f(:"}}}).startswith(
        "failed to load _meta.pre_function in plugin key-auth: invalid syntax")


def test_a_disabled_plugin_skips_its_schema_check(registry):
    assert registry.check_plugins({"limit-count": {"_meta": {"disable": True}}}) is None
    assert registry.check_plugins({"limit-count": {"_meta": {"disable": False}}}) == (
        "failed to check the configuration of plugin limit-count err: property \"count\" "
        "is required")


def test_check_metadata(registry):
    assert registry.check_metadata("nope", {}) == "invalid plugin name"
    assert registry.check_metadata("limit-count", {"limit_header": "X-Limit"}) is None
    assert registry.check_metadata("limit-count", {"id": "limit-count",
                                                   "limit_header": 1}) == (
        'invalid configuration: property "limit_header" validation failed: wrong type: '
        "expected string, got number")
    assert registry.check_metadata("key-auth", {"anything": 1}) is None
    # a module that exists but is not enabled still has metadata (APISIX requires it)
    assert registry.check_metadata("redirect-not-enabled", {}) == "invalid plugin name"
    only = plugins.load({"plugins": []})
    assert only.check_metadata("echo", {}) is None


def test_describe_injects_meta_like_apisix(registry):
    schema = registry.describe("key-auth")
    assert schema["$comment"] == "this is a mark for our injected plugin schema"
    assert schema["properties"]["_meta"] == plugins.META_SCHEMA
    assert "_meta" not in registry.get("key-auth").SCHEMA["properties"]  # module untouched
    assert registry.describe("key-auth", "consumer") == registry.get("key-auth").CONSUMER_SCHEMA
    assert registry.describe("limit-count", "consumer") is None
    assert registry.describe("nope") is None


def test_all_info(registry):
    info = registry.all_info()
    assert list(info)[:2] == ["fault-injection", "key-auth"]
    assert info["key-auth"] == {"version": 0.1, "priority": 2500,
                                "schema": registry.describe("key-auth"),
                                "consumer_schema": registry.get("key-auth").CONSUMER_SCHEMA,
                                "type": "auth"}
    assert set(info["limit-count"]) == {"version", "priority", "schema", "metadata_schema"}


# ------------------------------------------------------------------ chains
def test_merge_precedence_route_over_plugin_config_over_service():
    service = {"plugins": {"a": {"v": "service"}, "b": {"v": "service"}, "c": {"v": "service"}}}
    pc = {"plugins": {"b": {"v": "pc"}, "c": {"v": "pc"}}}
    route = {"plugins": {"c": {"v": "route"}}}
    assert merge_plugins(service, pc, route) == {"a": {"v": "service"}, "b": {"v": "pc"},
                                                 "c": {"v": "route"}}
    assert merge_plugins(None, None, route) is route["plugins"]


def test_chain_order_meta_priority_and_disable(registry):
    builder = ChainBuilder(registry)
    chain = builder.chain("1", {
        "key-auth": {},
        "limit-count": {"count": 1, "time_window": 1, "_meta": {"priority": 9000}},
        "aaa-same": {"_meta": {"disable": True}},
        "not-enabled": {},
    }, "route 1")
    assert [i.name for _, i in chain.rewrite] == ["key-auth"]
    assert [i.name for _, i in chain.access] == ["limit-count"]
    assert [i.name for i in chain.route_instances] == ["limit-count", "key-auth"]
    assert chain.log == ()
    assert chain.route_instances[1].conf["header"] == "apikey"   # defaults filled
    assert builder.chain("2", None, "route 2") is None
    with pytest.raises(ValueError, match="failed to check the configuration of plugin "
                                         "limit-count"):
        builder.chain("3", {"limit-count": {}}, "route 3")


def test_instances_are_reused_between_builds(registry):
    first = ChainBuilder(registry)
    a = first.chain("1", {"key-auth": {}}, "r1")
    first.finish()
    second = ChainBuilder(registry)
    b = second.chain("1", {"key-auth": {}}, "r1")
    assert a.rewrite[0][1] is b.rewrite[0][1]


def test_table_attaches_chains_and_global_rules(registry):
    up = {"nodes": {"127.0.0.1:1980": 1}, "type": "roundrobin"}
    objects = {
        "/apisix/routes/1": {"id": "1", "uri": "/plain", "upstream": up},
        "/apisix/routes/2": {"id": "2", "uri": "/pc", "upstream": up, "plugin_config_id": "9",
                             "plugins": {"proxy-rewrite": {"uri": "/x"}}},
        "/apisix/routes/3": {"id": "3", "uri": "/bad", "upstream": up,
                             "plugins": {"proxy-rewrite": {"uri": "x"}}},
        "/apisix/plugin_configs/9": {"id": "9", "plugins": {"echo": {"body": "pc"}}},
    }
    table = Table.build(objects, {}, cooperative=False, plugins=registry)
    plain = table.router.match(b"GET", None, b"/plain").data
    assert plain.chain is None and table.global_chain is None
    pc = table.router.match(b"GET", None, b"/pc").data
    assert [i.name for i in pc.chain.route_instances] == ["proxy-rewrite", "echo"]
    assert table.router.match(b"GET", None, b"/bad") is None   # invalid conf: skipped
    objects["/apisix/global_rules/1"] = {"id": "1", "plugins": {"key-auth": {}}}
    table = Table.build(objects, {}, cooperative=False, plugins=registry)
    plain = table.router.match(b"GET", None, b"/plain").data
    assert [i.name for _, i in plain.chain.g_rewrite] == ["key-auth"]
    assert plain.chain.rewrite == () and table.global_chain is not None


# ------------------------------------------------------------------ parked greenlets
def test_parked_greenlets_are_reused():
    pool = Parked(size=2)
    done = []

    def job(n):
        gevent.sleep(0.01)
        done.append(n)

    def submit_all():
        for n in range(6):
            pool.submit(job, n)
    gevent.get_hub().loop.run_callback(submit_all)   # from the hub, like a watcher callback
    gevent.sleep(0.2)
    assert sorted(done) == list(range(6))
    assert pool.count == 2 and len(pool.idle) == 2


def test_blocking_is_decided_per_conf(registry):
    builder = ChainBuilder(registry)
    abort = builder.chain("1", {"fault-injection": {"abort": {"http_status": 403}}}, "r1")
    delay = builder.chain("2", {"fault-injection": {"delay": {"duration": 1}}}, "r2")
    assert not abort.blocking and delay.blocking


META_USER = '''
NAME = "meta-user"
PRIORITY = 10
VERSION = 0.1
SCHEMA = {"type": "object"}
METADATA_SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "default": "X-Default"}}}

def prepare(conf, metadata):
    return {"name": metadata["name"]}

def access(conf, ctx):
    return None
'''


def test_metadata_reaches_prepare_and_recompiles_only_its_plugin(pdir):
    write(pdir, "meta-user", META_USER)
    registry = plugins.reload(conf_for(pdir, "meta-user", "key-auth"))
    assert registry.plugin("meta-user").wants_metadata
    assert not registry.plugin("key-auth").wants_metadata
    first = ChainBuilder(registry)
    first.add_metadata("/apisix/plugin_metadata/meta-user", "meta-user",
                       {"id": "meta-user", "name": "X-Set"})
    a = first.chain("1", {"meta-user": {}, "key-auth": {}}, "r1")
    first.finish()
    assert a.access[0][1].conf == {"name": "X-Set"}
    second = ChainBuilder(registry)   # no metadata now: its defaults; meta-user recompiled
    b = second.chain("1", {"meta-user": {}, "key-auth": {}}, "r1")
    assert b.access[0][1].conf == {"name": "X-Default"}
    assert b.rewrite[0][1] is a.rewrite[0][1]    # key-auth: untouched
    third = ChainBuilder(registry)    # an invalid object is ignored (defaults)
    third.add_metadata("/apisix/plugin_metadata/meta-user", "meta-user", {"name": 1})
    c = third.chain("1", {"meta-user": {}}, "r1")
    assert c.access[0][1].conf == {"name": "X-Default"}


def test_plugin_in_two_global_rules_is_dropped(registry):
    builder = ChainBuilder(registry)
    builder.add_global_rule("/apisix/global_rules/1", {"plugins": {"key-auth": {},
                                                                   "echo": {"body": "x"}}})
    builder.add_global_rule("/apisix/global_rules/2", {"plugins": {"key-auth": {}}})
    assert [i.name for i in builder.globals] == ["echo"]
