"""The etcd client's and source's pure logic: encoding, ranges, watch messages, backoff,
key mapping, decoding, batches and the persisted snapshot (no network here; the .t files in
t/etcd run against a real etcd)."""

import json
import random

import pytest

from gateway.master import etcd_source
from gateway.master.etcd_client import (
    KV,
    Backoff,
    EtcdClient,
    EtcdCompacted,
    EtcdError,
    Event,
    WatchBatch,
    b64,
    parse_kv,
    parse_watch_message,
    prefix_range_end,
    split_lines,
    unb64,
    version_tuple,
)
from gateway.master.etcd_source import (
    EtcdSource,
    canonical_key,
    decode_value,
    kind_of,
    normalize_prefix,
)

ROUTE = {"id": "1", "uri": "/hello",
         "upstream": {"nodes": {"127.0.0.1:1980": 1}, "type": "roundrobin"}}


def test_base64_round_trip():
    assert b64("/apisix/routes/1") == "L2FwaXNpeC9yb3V0ZXMvMQ=="
    assert unb64(b64(b"\x00\xff")) == b"\x00\xff"
    assert unb64(None) == b""


@pytest.mark.parametrize("prefix,end", [
    (b"/apisix/", b"/apisix0"),
    (b"a\xff", b"b"),
    (b"a\xff\xff", b"b"),
    (b"\xff\xff", b"\0"),
    (b"", b"\0"),
])
def test_prefix_range_end(prefix, end):
    assert prefix_range_end(prefix) == end


def test_parse_kv_decodes_and_defaults():
    kv = parse_kv({"key": b64("/a"), "value": b64("v"), "mod_revision": "7"})
    assert kv == KV("/a", b"v", 0, 7, 0, 0)


def test_watch_message_events_put_is_the_default_type():
    msg = {"result": {"header": {"revision": "12"}, "events": [
        {"kv": {"key": b64("/p/routes/1"), "value": b64("{}"), "mod_revision": "11"}},
        {"type": "DELETE", "kv": {"key": b64("/p/routes/2"), "mod_revision": "12"}}]}}
    batch = parse_watch_message(msg)
    assert batch.revision == 12
    assert [(e.type, e.kv.key) for e in batch.events] == [("PUT", "/p/routes/1"),
                                                          ("DELETE", "/p/routes/2")]


def test_watch_message_created_and_progress_are_nothing():
    assert parse_watch_message({"result": {"header": {"revision": "5"}, "created": True}}) is None
    assert parse_watch_message({"result": {"header": {"revision": "5"}}}) is None


def test_watch_message_compaction_and_errors():
    with pytest.raises(EtcdCompacted) as info:
        parse_watch_message({"result": {"canceled": True, "compact_revision": "40"}})
    assert info.value.compact_revision == 40
    with pytest.raises(EtcdError, match="cancelled"):
        parse_watch_message({"result": {"canceled": True, "cancel_reason": "x"}})
    with pytest.raises(EtcdError, match="boom"):
        parse_watch_message({"error": {"message": "boom"}})


def test_split_lines_keeps_the_partial_tail():
    lines, rest = split_lines(b"", b'{"a":1}\n{"b"')
    assert lines == [b'{"a":1}'] and rest == b'{"b"'
    lines, rest = split_lines(rest, b':2}\n\n')
    assert lines == [b'{"b":2}'] and rest == b""


def test_version_tuple():
    assert version_tuple("3.4.23") == (3, 4, 23)
    assert version_tuple("3.5.0-rc.1") == (3, 5, 0)
    assert version_tuple("") == ()
    assert version_tuple("3.3.9") < (3, 4, 0) <= version_tuple("3.4.0")


def test_backoff_doubles_is_capped_and_resets():
    backoff = Backoff(base=0.5, cap=30.0, rand=random.Random(1))
    delays = [backoff.next() for _ in range(12)]
    assert 0.4 <= delays[0] <= 0.6
    assert delays[1] > delays[0]
    assert max(delays) <= 30.0 and delays[-1] >= 24.0
    backoff.reset()
    assert backoff.next() <= 0.6


def test_client_failover_order_puts_failed_endpoints_last():
    client = EtcdClient(["http://a:1", "http://b:2/", "http://c:3"])
    assert client.hosts == ["http://a:1", "http://b:2", "http://c:3"]
    client._mark("http://a:1", False)
    assert client._order() == ["http://b:2", "http://c:3", "http://a:1"]
    client._mark("http://c:3", True)
    assert client._order()[0] == "http://c:3"


def test_endpoint_credentials_are_masked_in_messages():
    from gateway.master.etcd_client import safe_endpoint
    assert safe_endpoint("http://root:pw@10.0.0.1:2379") == "http://***@10.0.0.1:2379"
    assert safe_endpoint("https://10.0.0.1:2379") == "https://10.0.0.1:2379"


def test_client_from_conf_never_puts_the_password_in_its_repr():
    conf = {"deployment": {"etcd": {"host": ["http://x:1"], "timeout": 3, "user": "root",
                                    "password": "s3cret", "tls": {"verify": False}}}}
    client = EtcdClient.from_conf(conf)
    assert client.timeout == 3.0 and client.session.verify is False
    assert "s3cret" not in repr(client.__dict__.get("hosts"))


@pytest.mark.parametrize("raw,norm", [("/apisix", "/apisix"), ("/apisix/", "/apisix"),
                                      ("apisix", "/apisix"), ("/a/b/", "/a/b")])
def test_normalize_prefix(raw, norm):
    assert normalize_prefix(raw) == norm


def test_canonical_key_maps_the_prefix_to_apisix():
    assert canonical_key("/gw-1/routes/1", "/gw-1") == "/apisix/routes/1"
    assert canonical_key("/gw-10/routes/1", "/gw-1") is None
    assert canonical_key("/apisix/routes/1", "/apisix") == "/apisix/routes/1"


@pytest.mark.parametrize("key,kind", [
    ("/apisix/routes/1", "routes"),
    ("/apisix/routes/", None),
    ("/apisix/consumers/jack", "consumers"),
    ("/apisix/consumers/jack/credentials/c1", "credentials"),
    ("/apisix/plugin_metadata/http-logger", "plugin_metadata"),
    ("/apisix/secrets/vault/1", "secrets"),
    ("/apisix/plugins", "plugins"),
    ("/apisix/gen_id", None),
    ("/apisix/data_plane/server_info/x", None),
])
def test_kind_of(key, kind):
    assert kind_of(key) == kind


def test_decode_value():
    assert decode_value("/apisix/routes/1", json.dumps(ROUTE).encode()) == (ROUTE, None)
    assert decode_value("/apisix/routes/", b"init_dir") == (None, None)
    assert decode_value("/apisix/routes/1", b"init_dir") == (None, None)
    assert decode_value("/apisix/routes/1", b"nope") == (None, "invalid JSON")
    value, problem = decode_value("/apisix/routes/1", json.dumps(dict(ROUTE, bogus=1)).encode())
    assert value is None and "bogus" in problem
    assert decode_value("/apisix/plugins", b'[{"name":"a"}]') == ([{"name": "a"}], None)


class Recorder:
    def __init__(self):
        self.calls = []

    def objects(self, objects, rev):
        self.calls.append(("replace", objects, rev))

    def changes(self, changes, rev):
        self.calls.append(("apply", changes, rev))


def _event(kind, key, value=None, rev=1):
    raw = json.dumps(value).encode() if isinstance(value, dict) else (value or b"")
    return Event(kind, KV(key, raw, mod_revision=rev))


def test_batches_map_keys_skip_invalid_and_turn_invalid_puts_into_deletes():
    rec = Recorder()
    source = EtcdSource(EtcdClient(["http://x:1"]), "/gw/", rec.objects, rec.changes, None)
    source.apply_batch(WatchBatch(5, [_event("PUT", "/gw/routes/1", ROUTE, 4),
                                      _event("PUT", "/gw/routes/", b"init_dir", 5),
                                      _event("PUT", "/gw/routes/2", b"junk", 5)]))
    assert rec.calls == [("apply", [("/apisix/routes/1", ROUTE)], 5)]
    source.apply_batch(WatchBatch(6, [_event("PUT", "/gw/routes/1", b"junk", 6)]))
    source.apply_batch(WatchBatch(7, [_event("DELETE", "/gw/routes/9", rev=7)]))
    # a batch without usable changes still passes its revision on (Admin API writes wait
    # for their revision to reach the workers)
    assert rec.calls[1:] == [("apply", [("/apisix/routes/1", None)], 6), ("apply", [], 7)]
    assert source.rev == 7


def test_persisted_snapshot_round_trip(tmp_path):
    path = str(tmp_path / "logs" / "etcd-snapshot.json")
    rec = Recorder()
    source = EtcdSource(EtcdClient(["http://x:1"]), "/gw", rec.objects, rec.changes, path)
    source.apply_batch(WatchBatch(9, [_event("PUT", "/gw/routes/1", ROUTE, 9)]))
    source.persist()
    again = Recorder()
    fresh = EtcdSource(EtcdClient(["http://x:1"]), "/gw", again.objects, again.changes, path)
    assert fresh.load_persisted() == 9
    assert again.calls == [("replace", {"/apisix/routes/1": ROUTE}, 9)]
    other = EtcdSource(EtcdClient(["http://x:1"]), "/other", again.objects, again.changes, path)
    assert other.load_persisted() is None            # another prefix's snapshot is not used


def test_boot_falls_back_to_the_persisted_snapshot(tmp_path, monkeypatch):
    path = str(tmp_path / "snap.json")
    (tmp_path / "snap.json").write_text(json.dumps(
        {"format": 1, "prefix": "/gw", "rev": 3, "objects": {"/apisix/routes/1": ROUTE}}))
    rec = Recorder()
    source = EtcdSource(EtcdClient(["http://127.0.0.1:1"], timeout=1), "/gw", rec.objects,
                        rec.changes, path)
    monkeypatch.setattr(source.client, "range_prefix",
                        lambda prefix: (_ for _ in ()).throw(etcd_source.EtcdError("down")))
    assert source.load_now() is False
    assert rec.calls == [("replace", {"/apisix/routes/1": ROUTE}, 3)]
    assert source.rev == 3 and not source.listed
