"""The master's snapshot and the wire format it fans out (pure logic)."""

from gateway.core import plane
from gateway.master.snapshot import Snapshot


def test_replace_emits_puts_and_deletes_and_bumps_the_revision():
    snap = Snapshot()
    first = plane.decode_message(snap.replace({"/apisix/routes/1": {"uri": "/a"},
                                               "/apisix/routes/2": {"uri": "/b"}}).message)
    assert (first["rev"], first["prev"]) == (1, 0)
    assert sorted(k for k, _ in first["ops"]) == ["/apisix/routes/1", "/apisix/routes/2"]

    second = plane.decode_message(snap.replace({"/apisix/routes/1": {"uri": "/a"},
                                                "/apisix/routes/3": {"uri": "/c"}}).message)
    assert (second["rev"], second["prev"]) == (2, 1)
    ops = dict((k, v) for k, v in second["ops"])
    assert ops["/apisix/routes/2"] is None
    assert plane.unpack_object(ops["/apisix/routes/3"]) == {"uri": "/c"}
    assert "/apisix/routes/1" not in ops          # unchanged objects are not resent


def test_replace_with_identical_objects_publishes_nothing():
    snap = Snapshot()
    snap.replace({"/apisix/routes/1": {"uri": "/a"}})
    assert snap.replace({"/apisix/routes/1": {"uri": "/a"}}) is None
    assert snap.rev == 1


def test_apply_uses_the_given_revision_and_a_no_op_only_moves_the_revision():
    snap = Snapshot()
    delta = plane.decode_message(snap.apply([("/apisix/routes/1", {"uri": "/a"})], rev=41).message)
    assert (delta["rev"], delta["prev"]) == (41, 0)
    # a write workers do not keep still reaches them as an empty delta (Admin API writes
    # wait for their revision)
    delta = plane.decode_message(snap.apply([("/apisix/routes/9", None)], rev=42).message)
    assert (delta["rev"], delta["prev"], delta["ops"]) == (42, 41, [])
    assert snap.apply([("/apisix/routes/9", None)], rev=42) is None      # nothing new at all
    assert snap.apply([], rev=None) is None
    delta = plane.decode_message(snap.apply([("/apisix/routes/1", None)], rev=43).message)
    assert delta["ops"] == [["/apisix/routes/1", None]]


def test_full_snapshot_round_trip_and_lazy_store():
    snap = Snapshot()
    snap.replace({"/apisix/routes/%d" % i: {"uri": "/r%d" % i} for i in range(1000)})
    decoded = plane.decode_snapshot(snap.encoded())
    assert decoded["rev"] == 1
    store = plane.LazyObjects()
    store.replace_all(decoded["objs"])
    assert len(store) == 1000
    assert store["/apisix/routes/7"] == {"uri": "/r7"}
    store.apply([["/apisix/routes/7", plane.pack_object({"uri": "/new"})],
                 ["/apisix/routes/8", None]])
    assert store["/apisix/routes/7"] == {"uri": "/new"}
    assert "/apisix/routes/8" not in store
    assert len(store.keys_under("/apisix/routes/")) == 999


def test_endpoints_carry_the_master_pid_and_fit_a_unix_socket_name(tmp_path):
    pub, router = plane.endpoints(str(tmp_path), 4242)
    assert "4242" in pub and "4242" in router and pub != router
    long_prefix = tmp_path / ("x" * 120)
    pub, _ = plane.endpoints(str(long_prefix), 7)
    assert len(plane.endpoint_path(pub)) < 108
