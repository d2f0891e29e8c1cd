"""gateway.core.shdict: the node-wide shared dictionary, with real forked processes."""

from __future__ import annotations

import os
import signal
import time

import pytest

from gateway.core import shdict
from gateway.core.shdict import SharedDict


def _fork(fn) -> int:
    pid = os.fork()
    if pid == 0:   # the child: run, then leave without pytest's atexit hooks
        code = 0
        try:
            fn()
        except BaseException:  # noqa: BLE001 - any failure is the exit code
            code = 1
        os._exit(code)
    return pid


def _wait(pids: list[int]) -> None:
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


def test_basic_ops() -> None:
    d = SharedDict("t", 64 * 1024)
    assert d.get("a") is None
    assert d.incr("a", 1) == (1.0, 0.0)
    assert d.incr("a", 2)[0] == 3.0
    d.set("b", 7.5)
    assert d.get("b") == 7.5
    d.delete("b")
    assert d.get("b") is None
    assert d.get("b", 0) == 0
    assert len(d) == 1
    d.flush_all()
    assert len(d) == 0


def test_incr_init_and_ttl() -> None:
    d = SharedDict("t", 64 * 1024)
    value, left = d.incr("k", -1, 10, 0.2)
    assert value == 9.0 and 0 < left <= 0.2
    value, left2 = d.incr("k", -1, 10, 5)   # an existing key keeps its expiry
    assert value == 8.0 and left2 <= left
    assert 0 < d.ttl("k") <= 0.2
    time.sleep(0.25)
    assert d.get("k") is None and d.ttl("k") is None
    assert d.incr("k", 1, 0, 1)[0] == 1.0   # expired: starts over


def test_long_keys_and_update() -> None:
    d = SharedDict("t", 64 * 1024)
    long_a, long_b = "a" * 1000, "a" * 999 + "b"
    d.set(long_a, 1)
    d.set(long_b, 2)
    assert (d.get(long_a), d.get(long_b)) == (1, 2)
    assert d.update("u", lambda old, now: ((old or 0) + 5, old)) is None
    assert d.update("u", lambda old, now: (None, old)) == 5.0
    assert d.get("u") == 5.0


def test_full_table_evicts_the_soonest_expiring() -> None:
    d = SharedDict("t", shdict.HEAD_SIZE + 8 * shdict.SLOT_SIZE)   # 8 slots
    assert d.nslots == 8
    for i in range(8):
        d.set("k%d" % i, i, ttl=100 + i)
    d.set("new", 42, ttl=1000)
    assert d.get("new") == 42
    assert len(d) == 8
    assert d.get("k0") is None       # expired first: evicted
    assert all(d.get("k%d" % i) == i for i in range(1, 8))


def test_deleted_and_expired_slots_are_reused() -> None:
    d = SharedDict("t", shdict.HEAD_SIZE + 8 * shdict.SLOT_SIZE)
    for i in range(8):
        d.set("k%d" % i, i, ttl=0.05 if i % 2 else 0)
    d.delete("k0")
    time.sleep(0.06)
    for i in range(5):
        d.set("n%d" % i, i)
    assert [d.get("n%d" % i) for i in range(5)] == list(range(5))
    assert all(d.get("k%d" % i) == i for i in (2, 4, 6))


def test_counts_across_forked_processes() -> None:
    d = SharedDict("t", 1024 * 1024)
    per, procs = 2000, 4

    def work() -> None:
        for _ in range(per):
            d.incr("shared", 1, 0, 60)
            d.incr("p%d" % os.getpid(), 1)

    pids = [_fork(work) for _ in range(procs)]
    _wait(pids)
    assert d.get("shared") == per * procs
    assert all(d.get("p%d" % pid) == per for pid in pids)


def test_a_dead_holder_does_not_lock_everyone_out() -> None:
    d = SharedDict("t", 64 * 1024)
    r, w = os.pipe()

    def hold() -> None:
        d._lock()
        os.write(w, b"x")
        time.sleep(60)

    pid = _fork(hold)
    assert os.read(r, 1) == b"x"
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    started = time.monotonic()
    assert d.incr("after", 1)[0] == 1.0
    assert time.monotonic() - started < 5
    assert d.incr("after", 1)[0] == 2.0   # and the lock works normally again
    os.close(r)
    os.close(w)


@pytest.mark.parametrize("size", ["10m", "1k"])
def test_create_all_from_config(size: str) -> None:
    shdict._dicts.pop("unit-test-dict", None)
    conf = {"nginx_config": {"http": {"lua_shared_dict": {"unit-test-dict": size}}}}
    shdict.create_all(conf)
    d = shdict.get("unit-test-dict")
    shdict.create_all(conf)
    assert shdict.get("unit-test-dict") is d   # kept across a reload
    shdict._dicts.pop("unit-test-dict", None)
