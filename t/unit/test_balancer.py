"""Upstream balancers (gateway.worker.balancer): distributions, stability, fallbacks."""

from __future__ import annotations

from collections import Counter

import pytest

from gateway.core.ctxvars import RequestVars
from gateway.worker import balancer as bal
from gateway.worker.balancer import make_balancer


class N:
    """A node as the balancer sees it (the table's Node has the same fields)."""

    def __init__(self, name: str, weight: int = 1, priority: int = 0):
        self.name = name.encode()
        self.weight = weight
        self.priority = priority

    def __repr__(self) -> str:
        return self.name.decode()


def names(seq) -> list[str]:
    return [n.name.decode() for n in seq]


def req(url: str = "/", remote: str = "1.1.1.1", headers: dict | None = None) -> RequestVars:
    return RequestVars(b"GET", url.split("?")[0].encode(), url.encode(), b"h", remote.encode(),
                       [(k.encode(), v.encode()) for k, v in (headers or {}).items()])


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(bal, "clock", lambda: now[0])
    return now


def test_smooth_weighted_roundrobin_sequence_and_shares():
    a, b, c = N("a", 5), N("b", 1), N("c", 1)
    rr = make_balancer({}, [a, b, c])
    assert names(rr.pick() for _ in range(7)) == ["a", "a", "b", "a", "c", "a", "a"]
    counts = Counter(names(rr.pick() for _ in range(700)))
    assert counts == {"a": 500, "b": 100, "c": 100}


def test_roundrobin_equal_weights_alternate_and_single_node():
    a, b = N("a"), N("b")
    rr = make_balancer({"type": "roundrobin"}, [a, b])
    assert names(rr.pick() for _ in range(4)) == ["a", "b", "a", "b"]
    one = make_balancer({}, [a])
    assert one.pick() is a and make_balancer({}, []).pick() is None


class H:
    """Health state as the balancer reads it: the names of unhealthy nodes."""

    def __init__(self, *bad: N):
        self.bad = {n.name for n in bad}


def test_priority_backup_used_only_when_primaries_tried_or_unhealthy():
    p1, p2, backup = N("p1", 1, 0), N("p2", 1, 0), N("backup", 1, -1)
    rr = make_balancer({}, [p1, p2, backup])
    assert set(names(rr.pick() for _ in range(10))) == {"p1", "p2"}
    assert set(names(rr.pick(None, {p1}) for _ in range(10))) == {"p2"}
    assert rr.pick(None, {p1, p2}) is backup      # a retry falls back to the backup
    assert rr.pick(None, {p1, p2, backup}) is None  # every node tried: the retry stops
    assert rr.pick() in (p1, p2)                  # a failure marks nothing across requests
    health = H(p1, p2)
    rr = make_balancer({}, [p1, p2, backup], health=health)
    assert names(rr.pick() for _ in range(3)) == ["backup"] * 3
    health.bad = {p1.name, p2.name, backup.name}  # all unhealthy: pick from all (APISIX)
    assert set(names(rr.pick() for _ in range(10))) == {"p1", "p2"}
    assert rr.pick(None, {p1}) is p2
    health.bad = set()
    assert set(names(rr.pick() for _ in range(10))) == {"p1", "p2"}


def test_unhealthy_nodes_are_skipped_by_every_balancer():
    a, b, c = N("a"), N("b"), N("c")
    for conf in ({}, {"type": "chash", "key": "remote_addr"}, {"type": "ewma"},
                 {"type": "least_conn"}):
        health = H(b)
        bal_ = make_balancer(conf, [a, b, c], health=health)
        picks = {bal_.pick(req(remote="10.0.0.%d" % i)) for i in range(60)}
        assert picks <= {a, c} and picks, conf
        assert bal_.pick(req(), {a, c}) is b, conf  # only b left: unhealthy beats none


def test_chash_by_header_is_stable_and_spreads():
    nodes = [N("n%d" % i) for i in range(5)]
    ch = make_balancer({"type": "chash", "hash_on": "header", "key": "X-User"}, nodes)
    first = {u: ch.pick(req(headers={"X-User": "u%d" % u})) for u in range(500)}
    again = {u: ch.pick(req(headers={"X-User": "u%d" % u})) for u in range(500)}
    assert first == again
    counts = Counter(n.name for n in first.values())
    assert len(counts) == 5 and min(counts.values()) > 50


def test_chash_removing_a_node_moves_only_its_keys():
    nodes = [N("10.0.0.%d:80" % i) for i in range(6)]
    conf = {"type": "chash", "key": "arg_id"}
    before = make_balancer(conf, nodes)
    after = make_balancer(conf, nodes[:2] + nodes[3:])
    gone = nodes[2]
    moved = 0
    for k in range(2000):
        r = req("/?id=%d" % k)
        old, new = before.pick(r), after.pick(r)
        if old is not gone:
            assert new is old, k
        else:
            moved += 1
    assert 150 < moved < 550  # about a sixth of the keys


def test_chash_tried_node_passes_its_keys_on_and_weights_count():
    a, b = N("a", 1), N("b", 3)
    ch = make_balancer({"type": "chash", "hash_on": "vars", "key": "remote_addr"}, [a, b])
    picks = Counter(ch.pick(req(remote="10.0.%d.%d" % (i // 250, i % 250))).name
                    for i in range(4000))
    assert 2500 < picks[b"b"] < 3500
    assert all(ch.pick(req(remote="10.0.0.%d" % i), {a}) is b for i in range(100))


def test_chash_keys_cookie_vars_combinations_and_fallback():
    nodes = [N("n%d" % i) for i in range(4)]
    ck = make_balancer({"type": "chash", "hash_on": "cookie", "key": "sid"}, nodes)
    assert ck.key(req(headers={"Cookie": "sid=abc"})) == b"abc"
    assert ck.key(req(remote="9.9.9.9")) == b"9.9.9.9"       # no cookie → remote_addr
    combo = make_balancer({"type": "chash", "hash_on": "vars_combinations",
                           "key": "$remote_addr-$arg_a"}, nodes)
    assert combo.key(req("/?a=7", remote="1.2.3.4")) == b"1.2.3.4-7"
    cons = make_balancer({"type": "chash", "hash_on": "consumer"}, nodes)
    r = req(remote="5.5.5.5")
    assert cons.key(r) == b"5.5.5.5"
    r.extra = {"consumer_name": "jack"}
    assert cons.key(r) == b"jack"
    with pytest.raises(ValueError, match="missing key"):
        make_balancer({"type": "chash"}, nodes)
    with pytest.raises(ValueError, match="unknown balancer type"):
        make_balancer({"type": "random"}, nodes)


def test_chash_ring_size_is_capped():
    ch = make_balancer({"type": "chash", "key": "uri"}, [N("a", 1000), N("b", 1)])
    hashes, _owners = ch.rings[0]
    assert len(hashes) <= bal.CHASH_MAX_POINTS + bal.CHASH_POINTS + 8


def test_least_conn_prefers_idle_nodes_by_weight():
    a, b = N("a", 1), N("b", 2)
    lc = make_balancer({"type": "least_conn"}, [a, b])
    picks = [lc.pick() for _ in range(3)]
    assert sorted(names(picks)) == ["a", "b", "b"]   # 2 in flight on b weigh like 1 on a
    lc.done(a, 0.01)
    assert lc.pick() is a                            # now the least loaded
    for n in picks[1:] + [a]:
        lc.done(n, 0.01)
    assert sum(lc.active.values()) == 1
    idle = make_balancer({"type": "least_conn"}, [N("x"), N("y")])
    seq = []
    for _ in range(4):                               # sequential exchanges rotate
        node = idle.pick()
        seq.append(node)
        idle.done(node, 0.01)
    assert sorted(names(seq)) == ["x", "x", "y", "y"]


def test_ewma_prefers_the_faster_node(clock):
    fast, slow = N("fast"), N("slow")
    ew = make_balancer({"type": "ewma"}, [fast, slow])
    ew.rand.seed(1)
    ew.done(fast, 0.01)
    ew.done(slow, 0.5)
    assert all(ew.pick() is fast for _ in range(20))
    assert all(ew.pick(None, {fast}) is slow for _ in range(5))
