"""An Admin API PUT as one etcd transaction (gateway/master/admin_replace.py), against an
in-memory etcd that evaluates the transaction's compares as etcd does."""

import json

from gateway.master.admin_replace import Known, replace
from gateway.master.etcd_client import b64, unb64


class FakeEtcd:
    def __init__(self):
        self.rev = 1
        self.kvs = {}           # key -> (value, create_revision, mod_revision)
        self.txns = 0

    def write(self, key, value):
        self.rev += 1
        old = self.kvs.get(key)
        self.kvs[key] = (value, old[1] if old else self.rev, self.rev)

    def _holds(self, cmp):
        key = unb64(cmp["key"]).decode()
        _, create, mod = self.kvs.get(key, (b"", 0, 0))
        if cmp["target"] == "MOD":
            return mod == int(cmp["mod_revision"])
        return create == int(cmp["create_revision"])

    def txn(self, compare, success, failure=None):
        self.txns += 1
        ok = all(self._holds(c) for c in compare)
        responses = []
        for op in success if ok else failure or []:
            if "request_put" in op:
                put = op["request_put"]
                self.write(unb64(put["key"]).decode(), unb64(put["value"]))
                responses.append({"response_put": {}})
            else:
                key = unb64(op["request_range"]["key"]).decode()
                kvs = []
                if key in self.kvs:
                    value, create, mod = self.kvs[key]
                    kvs.append({"key": b64(key), "value": b64(value),
                                "create_revision": str(create), "mod_revision": str(mod)})
                responses.append({"response_range": {"kvs": kvs}})
        return {"header": {"revision": str(self.rev)}, "succeeded": ok,
                "responses": responses}


def value(create_time, uri="/a"):
    return json.dumps({"id": "1", "uri": uri, "create_time": create_time,
                       "update_time": create_time}, separators=(",", ":")).encode()


def test_a_new_key_then_a_known_key_take_one_transaction_each():
    etcd, known = FakeEtcd(), Known()
    first = replace(etcd, known, "/apisix/routes/1", value(100))
    assert first == {"rev": etcd.rev, "existed": False, "create_time": 100}
    assert etcd.txns == 1
    second = replace(etcd, known, "/apisix/routes/1", value(200, "/b"))
    assert second["existed"] is True and second["create_time"] == 100
    assert etcd.txns == 2
    stored = json.loads(etcd.kvs["/apisix/routes/1"][0])
    assert stored == {"id": "1", "uri": "/b", "create_time": 100, "update_time": 200}
    assert list(stored) == ["id", "uri", "create_time", "update_time"]


def test_a_version_written_elsewhere_is_read_in_the_same_transaction_and_kept():
    etcd, known = FakeEtcd(), Known()
    etcd.write("/apisix/routes/1", value(50))             # not through this bridge
    answer = replace(etcd, known, "/apisix/routes/1", value(300))
    assert answer["existed"] is True and answer["create_time"] == 50
    assert etcd.txns == 2                                  # failed compare, then the write
    etcd.write("/apisix/routes/1", value(60))             # changed behind our back
    assert replace(etcd, known, "/apisix/routes/1", value(400))["create_time"] == 60


def test_a_key_deleted_behind_our_back_is_created_again():
    etcd, known = FakeEtcd(), Known()
    replace(etcd, known, "/apisix/routes/1", value(100))
    del etcd.kvs["/apisix/routes/1"]
    answer = replace(etcd, known, "/apisix/routes/1", value(500))
    assert answer["existed"] is False and answer["create_time"] == 500


def test_a_previous_value_that_is_not_an_object_counts_as_existing_without_create_time():
    etcd, known = FakeEtcd(), Known()
    etcd.write("/apisix/routes/1", b"not json")
    answer = replace(etcd, known, "/apisix/routes/1", value(700))
    assert answer["existed"] is True and answer["create_time"] == 700


def test_known_forgets_the_oldest_keys():
    known = Known(size=2)
    for i in range(3):
        known.set("/k%d" % i, i, None)
    assert known.get("/k0") is None and known.get("/k2") == (2, None)
