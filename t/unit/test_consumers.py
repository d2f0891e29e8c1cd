"""The consumer index built with the table (gateway.worker.consumers) and the consumer
merge: lookups, decryption of ENCRYPT_FIELDS, credentials, groups, precedence, caching."""

from __future__ import annotations

import pytest

from gateway.core import plugins
from gateway.core.crypto import Keyring
from gateway.worker.consumers import GROUP_MISSING, consumer_chain
from gateway.worker.table import Table

KEYRING = ["qeddd145sfvddff3"]
CONF = {"apisix": {"data_encryption": {"enable_encrypt_fields": True, "keyring": KEYRING}}}
UPSTREAM = {"type": "roundrobin", "nodes": {"127.0.0.1:1980": 1}}


@pytest.fixture(scope="module")
def registry() -> plugins.PluginSet:
    return plugins.load({"plugins": ["key-auth", "basic-auth", "jwt-auth", "hmac-auth",
                                     "consumer-restriction", "proxy-rewrite", "echo",
                                     "fault-injection"]})


def build(registry, objects: dict) -> Table:
    return Table.build(objects, CONF, cooperative=False, plugins=registry)


def chain_of(table: Table, route_id: str = "1"):
    for route in table.routes:
        if route.id == route_id:
            return route.data.chain
    raise KeyError(route_id)


def objects(**extra) -> dict:
    enc = Keyring(KEYRING).encrypt
    out = {
        "/apisix/routes/1": {"id": "1", "uri": "/a", "upstream": UPSTREAM,
                             "plugins": {"key-auth": {},
                                         "echo": {"before_body": "route"}}},
        "/apisix/routes/2": {"id": "2", "uri": "/b", "upstream": UPSTREAM,
                             "plugins": {"echo": {"before_body": "plain"}}},
        "/apisix/consumer_groups/g1": {"id": "g1", "plugins": {
            "echo": {"before_body": "group"},
            "proxy-rewrite": {"headers": {"set": {"X-Group": "1"}}}}},
        "/apisix/consumers/jack": {"username": "jack", "labels": {"custom_id": "c-7"},
                                   "plugins": {"key-auth": {"key": enc("jack-key")}}},
        "/apisix/consumers/jack/credentials/c1": {"id": "c1", "plugins": {
            "key-auth": {"key": enc("cred-key")}}},
        "/apisix/consumers/tom": {"username": "tom", "group_id": "g1", "plugins": {
            "key-auth": {"key": "tom-plain"},
            "echo": {"before_body": "consumer"}}},
        "/apisix/consumers/ann": {"username": "ann", "group_id": "g1",
                                  "plugins": {"basic-auth": {"username": "ann",
                                                             "password": enc("pw")}}},
        "/apisix/consumers/lost": {"username": "lost", "group_id": "nope",
                                   "plugins": {"key-auth": {"key": "lost-key"}}},
    }
    out.update(extra)
    return out


def test_keys_are_decrypted_and_found_with_a_dict_get(registry):
    index = chain_of(build(registry, objects())).consumers
    jack = index.by_plugin["key-auth"]["jack-key"]
    assert (jack.username, jack.credential_id, jack.custom_id) == ("jack", None, "c-7")
    assert jack.headers == ((b"X-Consumer-Username", b"jack"),
                            (b"X-Consumer-Custom-ID", b"c-7"))
    cred = index.by_plugin["key-auth"]["cred-key"]
    assert (cred.username, cred.credential_id) == ("jack", "c1")
    assert (b"X-Credential-Identifier", b"c1") in cred.headers
    assert index.by_plugin["key-auth"]["tom-plain"].username == "tom"  # stored plain
    ann = index.by_plugin["basic-auth"]["ann"]
    assert ann.conf["password"] == "pw"
    assert ann.group_id == "g1"
    assert set(index.consumers) == {"jack", "tom", "ann", "lost"}
    assert "jack-key" not in repr(jack)


def test_a_route_without_auth_has_no_index(registry):
    chain = chain_of(build(registry, objects()), "2")
    assert chain.auth is False and chain.consumers is None


def test_a_wild_credential_is_skipped(registry, caplog):
    extra = {"/apisix/consumers/ghost/credentials/x": {"id": "x", "plugins": {
        "key-auth": {"key": "ghost-key"}}}}
    index = chain_of(build(registry, objects(**extra))).consumers
    assert "ghost-key" not in index.by_plugin["key-auth"]
    assert "a wild credential has appeared" in caplog.text


def test_an_invalid_consumer_is_skipped_the_rest_kept(registry, caplog):
    extra = {"/apisix/consumers/bad": {"username": "bad", "plugins": {"key-auth": {}}}}
    index = chain_of(build(registry, objects(**extra))).consumers
    assert "bad" not in index.consumers and "jack-key" in index.by_plugin["key-auth"]
    assert 'property "key" is required' in caplog.text


def test_merge_precedence_consumer_over_group_over_route(registry):
    chain = chain_of(build(registry, objects()))
    index = chain.consumers
    tom = index.by_plugin["key-auth"]["tom-plain"]
    merged = consumer_chain(chain, tom)
    names = {inst.name: inst for inst in merged.route_instances}
    assert names["echo"].conf["before_body"] == "consumer"
    assert "proxy-rewrite" in names and "key-auth" in names
    # the group's proxy-rewrite is new to the route: its rewrite runs after the merge;
    # echo was on the route already (no rewrite phase anyway), key-auth is an auth plugin
    assert [inst.name for _, inst in merged.consumer_rewrite] == ["proxy-rewrite"]
    assert consumer_chain(chain, tom) is merged  # cached per (route, consumer)
    ann = index.by_plugin["basic-auth"]["ann"]
    assert {i.name: i for i in consumer_chain(chain, ann).route_instances
            }["echo"].conf["before_body"] == "group"


def test_a_consumer_without_plugins_or_group_changes_nothing(registry):
    chain = chain_of(build(registry, objects()))
    assert consumer_chain(chain, chain.consumers.by_plugin["key-auth"]["jack-key"]) is None


def test_a_missing_group_answers_503(registry):
    chain = chain_of(build(registry, objects()))
    lost = chain.consumers.by_plugin["key-auth"]["lost-key"]
    assert consumer_chain(chain, lost) is GROUP_MISSING


def test_route_level_encrypted_fields_are_decrypted_too(registry):
    """ChainBuilder decrypts every plugin's ENCRYPT_FIELDS (here a user-less basic case:
    a consumer's hmac secret through the same helper)."""
    enc = Keyring(KEYRING).encrypt
    extra = {"/apisix/consumers/h": {"username": "h", "plugins": {
        "hmac-auth": {"key_id": "hk", "secret_key": enc("s3")}}}}
    index = chain_of(build(registry, objects(**extra))).consumers
    assert index.by_plugin["hmac-auth"]["hk"].conf["secret_bytes"] == b"s3"


def test_encryption_off_keeps_values_as_stored():
    registry = plugins.load({"plugins": ["key-auth"]})  # a fresh compile cache
    conf = {"apisix": {"data_encryption": {"enable_encrypt_fields": False,
                                           "keyring": KEYRING}}}
    table = Table.build(objects(), conf, cooperative=False, plugins=registry)
    index = chain_of(table).consumers
    assert "jack-key" not in index.by_plugin["key-auth"]
    assert "tom-plain" in index.by_plugin["key-auth"]
