"""Pure pieces of the Admin API: PATCH merging, list filters and paging, keyring, cert pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.admin import listing, patch
from gateway.admin.api import AdminRequest, Fail
from gateway.admin.store import Item
from gateway.core import certs
from gateway.core.crypto import Keyring

CERTS = Path(__file__).resolve().parents[1] / "certs"


def test_merge_deep_null_deletes_arrays_replace():
    old = {"a": {"b": 1, "c": 2}, "m": ["GET", "POST"], "x": 1}
    assert patch.merge(old, {"a": {"b": None, "d": 3}, "m": ["PUT"], "x": None}) == \
        {"a": {"c": 2, "d": 3}, "m": ["PUT"]}


def test_at_path_creates_objects_and_refuses_non_objects():
    value = {"uri": "/a"}
    assert patch.at_path(value, "upstream/nodes", {"h:1": 1}) == \
        {"uri": "/a", "upstream": {"nodes": {"h:1": 1}}}
    with pytest.raises(Fail) as err:
        patch.at_path({"uri": "/a"}, "uri/x", 1)
    assert err.value.body == {"error_msg": "invalid sub-path: /uri"}


def _items(n):
    return [Item("/apisix/routes/%d" % i,
                 {"uri": "/r/%d" % i, "name": "n%d" % i, "labels": {"k": "v"} if i % 2 else {},
                  "service_id": "s" if i < 3 else None}, create=100 - i, mod=100 - i)
            for i in range(n)]


def _req(query):
    return AdminRequest("GET", "/routes", query, b"", {}, "127.0.0.1")


def test_filters_and_total_before_paging():
    page = listing.select(_items(30), _req("label=k&page=1&page_size=10"), "routes")
    assert listing.total(page) == 15 and len(page) == 10
    # paging sorts by creation: the newest-created id (29) has the lowest create revision
    assert page[0].key == "/apisix/routes/29"
    assert [it.key for it in listing.select(_items(5), _req("name=^n1$"), "routes")] == \
        ["/apisix/routes/1"]
    assert len(listing.select(_items(5), _req("filter=service_id%3Ds"), "routes")) == 3
    assert len(listing.select(_items(5), _req("uri=/r/4"), "routes")) == 1


def test_page_size_bounds():
    with pytest.raises(Fail) as err:
        listing.select(_items(3), _req("page=1&page_size=501"), "routes")
    assert err.value.body == b"page_size must be between 10 and 500"


def test_keyring_round_trip_rotation_and_plain_text():
    new, old = Keyring(["a" * 16, "b" * 16]), Keyring(["b" * 16])
    secret = old.encrypt("private")
    assert secret != "private" and new.decrypt(secret) == "private"
    assert new.decrypt("not encrypted at all") == "not encrypted at all"
    assert Keyring([]).encrypt("x") == "x"


def test_cert_pairs():
    cert, key = (CERTS / "test.crt").read_text(), (CERTS / "test.key").read_text()
    assert certs.check_pair(cert, key) is None
    assert "failed to match" in certs.check_pair(cert, (CERTS / "other.key").read_text())
    assert certs.check_pair("junk", key).startswith("failed to parse cert")
    assert certs.check_pair(cert, "junk").startswith("failed to parse key")
    assert certs.check_pair("$secret://vault/1/cert", key) is None
