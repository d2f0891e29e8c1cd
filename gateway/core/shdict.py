"""Node-wide shared dictionaries: nginx's ``lua_shared_dict`` for our forked workers.

A limit of 10 requests a minute is 10 per node, not 10 per worker, so the counters of
limit-count, limit-req and limit-conn live in memory every worker of the node sees. The
master creates each dictionary (``nginx_config.http.lua_shared_dict``: name -> size) before
it forks any worker: an anonymous ``MAP_SHARED`` mapping plus a process-shared lock, both
inherited by every worker, so they outlive a worker's respawn and a HUP, like nginx's shm
zones.

The table is a fixed array of slots with open addressing (linear probing from the key's
CRC-32). A slot holds a state byte, the key length, the key hash, a float value, an expiry
(``time.monotonic()``, which is system-wide on Linux) and the key bytes (keys longer than
:data:`KEY_MAX` are replaced by their SHA-1, so any key fits). Deleted slots become
tombstones; expired ones are reused in place. When a key's probe window has no free slot,
the entry expiring first in it is evicted (``forcible`` in nginx's words) and logged. The
fields are aligned and read through typed memoryviews of the mapping: a counter's hot path
touches its slot and the lock, and creates no tuple.

Every operation takes the lock for a few microseconds of pure Python (no greenlet switch can
happen inside), so the event loop is never held up. The lock is a POSIX semaphore
(``multiprocessing.Lock``). Each process that uses a dictionary writes its pid once into
the dictionary's header; if a worker dies holding the lock (killed mid-operation), the next
waiter, still blocked after :data:`STALE_AFTER` (operations take microseconds), finds the
registered pid that is gone and takes the lock over, where nginx would force-unlock the dead
worker's mutex. (Recording the holder on every operation instead cost a write to a shared
line per lock and unlock.)
"""

from __future__ import annotations

import hashlib
import mmap
import multiprocessing
import os
import time
import zlib
from typing import Any

from gateway.core.log import every, log

__all__ = ["HEAD_SIZE", "KEY_MAX", "SLOT_SIZE", "SharedDict", "create_all", "get", "key_bytes"]

#: bytes per slot: state u8 @0, key length u16 @2, hash u32 @4, value f64 @8, expiry f64
#: @16 (0 = never), then the key bytes
SLOT_SIZE = 256
_KEY_AT = 24
KEY_MAX = SLOT_SIZE - _KEY_AT
#: the header (one page): magic u32, slot count u32, then the pids of the processes that
#: use the dictionary (u32 each, 0 = free) from byte 64 on
HEAD_SIZE = 4096
_MAGIC = 0x53484432
_PIDS_AT = 64 // 4
_PIDS_END = HEAD_SIZE // 4
#: slots probed before the table counts as full for a key
MAX_PROBE = 32
#: how long a waiter blocks on the lock before it looks for a user that died
STALE_AFTER = 0.2

EMPTY, USED, DELETED = 0, 1, 2
ABSENT, FOUND, STALE = 0, 1, 2
_now = time.monotonic
#: this process's pid (os.getpid() is a system call; glibc does not cache it), refreshed in
#: a forked child: a dictionary registers each process that uses it once
_PID = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))
_crc32 = zlib.crc32


class SharedDict:
    """One dictionary. Create it before forking; use it from any process afterwards."""

    __slots__ = ("_acquire", "_release", "f64", "lock", "mm", "name", "nslots", "size",
                 "u16", "u32", "user")

    def __init__(self, name: str, size: int):
        self.name = name
        self.nslots = max(8, (size - HEAD_SIZE) // SLOT_SIZE)
        self.size = HEAD_SIZE + self.nslots * SLOT_SIZE
        self.mm = mmap.mmap(-1, self.size, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
        view = memoryview(self.mm)
        self.u16 = view.cast("H")
        self.u32 = view.cast("I")
        self.f64 = view.cast("d")
        self.u32[0] = _MAGIC
        self.u32[1] = self.nslots
        self.lock = multiprocessing.Lock()
        self._acquire = self.lock.acquire
        self._release = self.lock.release
        self.user = 0   # the pid this process registered under (0: not yet)

    # ---- the lock
    def _lock(self) -> None:
        if self.user != _PID[0]:
            self._register()
        if not self._acquire(False):
            self._wait()

    def _unlock(self) -> None:
        self._release()

    def _register(self) -> None:
        """Write this process's pid into the header (once per process), reusing the entry
        of a process that is gone when the table of users is full."""
        pid = _PID[0]
        if not self._acquire(False):
            self._wait()
        try:
            u32 = self.u32
            free = -1
            for i in range(_PIDS_AT, _PIDS_END):
                who = u32[i]
                if who == pid:
                    free = -2
                    break
                if who == 0 and free == -1:
                    free = i
            if free == -1:
                free = next((i for i in range(_PIDS_AT, _PIDS_END)
                             if not _alive(u32[i])), -1)
            if free >= 0:
                u32[free] = pid
        finally:
            self._release()
        self.user = pid

    def _wait(self) -> None:
        while not self._acquire(True, STALE_AFTER):
            u32 = self.u32
            dead = [u32[i] for i in range(_PIDS_AT, _PIDS_END)
                    if u32[i] and u32[i] != _PID[0] and not _alive(u32[i])]
            if dead:
                for i in range(_PIDS_AT, _PIDS_END):
                    if u32[i] in dead:
                        u32[i] = 0
                log.error("shared dict %s: the lock is held and worker %s is gone; taking "
                          "the lock over", self.name, ", ".join(map(str, dead)))
                return

    # ---- the table (callers hold the lock)
    def _find(self, kb: bytes, h: int, now: float, insert: bool) -> tuple[int, int]:
        """(slot offset, FOUND / STALE (there, expired) / ABSENT) for ``kb``; when absent,
        the offset where it may be written (-1 without ``insert`` when there is none; with
        ``insert`` a live entry is evicted to make room)."""
        mm = self.mm
        u16 = self.u16
        u32 = self.u32
        f64 = self.f64
        n = self.nslots
        idx = h % n
        reuse = -1
        klen = len(kb)
        for _ in range(min(n, MAX_PROBE)):
            off = HEAD_SIZE + idx * SLOT_SIZE
            state = mm[off]
            if state == EMPTY:
                return (reuse if reuse >= 0 else off), ABSENT
            if state == USED:
                expiry = f64[(off >> 3) + 2]
                live = expiry == 0.0 or expiry > now
                if u32[(off >> 2) + 1] == h and u16[(off >> 1) + 1] == klen \
                        and mm[off + _KEY_AT:off + _KEY_AT + klen] == kb:
                    return off, (FOUND if live else STALE)
                if not live and reuse < 0:
                    reuse = off
            elif reuse < 0:         # a tombstone
                reuse = off
            idx += 1
            if idx == n:
                idx = 0
        if reuse >= 0 or not insert:
            return reuse, ABSENT
        return self._evict(h), ABSENT

    def _evict(self, h: int) -> int:
        """The slot of the probe window expiring first (no expiry counts as last)."""
        f64 = self.f64
        n = self.nslots
        idx = h % n
        best, best_exp = -1, float("inf")
        for _ in range(min(n, MAX_PROBE)):
            off = HEAD_SIZE + idx * SLOT_SIZE
            expiry = f64[(off >> 3) + 2]
            exp = expiry if expiry else float("inf")
            if best < 0 or exp < best_exp:
                best, best_exp = off, exp
            idx = idx + 1 if idx + 1 < n else 0
        if every("shdict full " + self.name, 10.0):
            log.warning("shared dict %s is full, removed a valid key to store a new one",
                        self.name)
        return best

    def _write(self, off: int, kb: bytes, h: int, value: float, expiry: float) -> None:
        klen = len(kb)
        self.mm[off] = USED
        self.u16[(off >> 1) + 1] = klen
        self.u32[(off >> 2) + 1] = h
        i = off >> 3
        self.f64[i + 1] = value
        self.f64[i + 2] = expiry
        self.mm[off + _KEY_AT:off + _KEY_AT + klen] = kb

    def _value(self, off: int) -> float:
        return self.f64[(off >> 3) + 1]

    # ---- the API
    def incr(self, key: str, delta: float, init: float = 0, ttl: float = 0) -> tuple[float, float]:
        """Add ``delta`` to ``key``'s value; an absent or expired key starts at ``init``
        with ``ttl`` seconds to live (0: forever; an existing key keeps its expiry).
        Returns (new value, seconds left to live, 0 when it never expires)."""
        kb = key_bytes(key)
        return self.incr_raw(kb, _crc32(kb), delta, init, ttl)

    def incr_raw(self, kb: bytes, h: int, delta: float, init: float = 0,
                 ttl: float = 0) -> tuple[float, float]:
        """:meth:`incr` for a key its caller already has as bytes (``kb`` as ``key_bytes``
        gives it, ``h`` its CRC-32): limit-count's per-request path builds the key from
        the client address bytes without a str round trip."""
        if self.user != _PID[0]:
            self._register()
        if not self._acquire(False):
            self._wait()
        try:
            now = _now()
            mm = self.mm
            f64 = self.f64
            # the common case first: the key lives in its home slot
            off = HEAD_SIZE + (h % self.nslots) * SLOT_SIZE
            i = off >> 3
            if mm[off] == USED and self.u32[(off >> 2) + 1] == h:
                expiry = f64[i + 2]
                if (expiry == 0.0 or expiry > now) and self.u16[(off >> 1) + 1] == len(kb) \
                        and mm[off + _KEY_AT:off + _KEY_AT + len(kb)] == kb:
                    value = f64[i + 1] + delta
                    f64[i + 1] = value
                    return value, (expiry - now if expiry else 0.0)
            off, found = self._find(kb, h, now, True)
            if found == FOUND:
                i = off >> 3
                expiry = f64[i + 2]
                value = f64[i + 1] + delta
                f64[i + 1] = value
                return value, (expiry - now if expiry else 0.0)
            value = init + delta
            self._write(off, kb, h, value, now + ttl if ttl > 0 else 0.0)
            return value, (ttl if ttl > 0 else 0.0)
        finally:
            self._release()

    def update(self, key: str, fn: Any, ttl: float = 0) -> Any:
        """Read-modify-write under the lock: ``fn(value or None, now)`` returns
        ``(new value or None to leave the entry as it is, result)``; the new value gets
        ``ttl`` seconds to live. Returns ``result``. ``fn`` must be quick, pure code (it
        runs with the node-wide lock held; it must not block or switch greenlets)."""
        kb = key_bytes(key)
        h = _crc32(kb)
        self._lock()
        try:
            now = _now()
            off, found = self._find(kb, h, now, True)
            old = self._value(off) if found == FOUND else None
            new, result = fn(old, now)
            if new is not None:
                self._write(off, kb, h, float(new), now + ttl if ttl > 0 else 0.0)
        finally:
            self._unlock()
        return result

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, ``default`` when absent or expired."""
        kb = key_bytes(key)
        h = _crc32(kb)
        self._lock()
        try:
            off, found = self._find(kb, h, _now(), False)
            value = self._value(off) if found == FOUND else default
        finally:
            self._unlock()
        return value

    def ttl(self, key: str) -> float | None:
        """Seconds ``key`` has left (0: never expires), None when absent."""
        kb = key_bytes(key)
        h = _crc32(kb)
        self._lock()
        try:
            now = _now()
            off, found = self._find(kb, h, now, False)
            expiry = self.f64[(off >> 3) + 2] if found == FOUND else None
        finally:
            self._unlock()
        if expiry is None:
            return None
        return expiry - now if expiry else 0.0

    def set(self, key: str, value: float, ttl: float = 0) -> None:
        kb = key_bytes(key)
        h = _crc32(kb)
        self._lock()
        try:
            now = _now()
            off, _found = self._find(kb, h, now, True)
            self._write(off, kb, h, float(value), now + ttl if ttl > 0 else 0.0)
        finally:
            self._unlock()

    def delete(self, key: str) -> None:
        kb = key_bytes(key)
        h = _crc32(kb)
        self._lock()
        try:
            off, found = self._find(kb, h, _now(), False)
            if found != ABSENT:
                self.mm[off] = DELETED
        finally:
            self._unlock()

    def flush_all(self) -> None:
        self._lock()
        try:
            self.mm[HEAD_SIZE:] = bytes(self.size - HEAD_SIZE)
        finally:
            self._unlock()

    def __len__(self) -> int:
        """Live entries (a full scan: for tests and diagnostics)."""
        now = _now()
        count = 0
        mm = self.mm
        f64 = self.f64
        self._lock()
        try:
            for i in range(self.nslots):
                off = HEAD_SIZE + i * SLOT_SIZE
                if mm[off] == USED:
                    expiry = f64[(off >> 3) + 2]
                    if expiry == 0.0 or expiry > now:
                        count += 1
        finally:
            self._unlock()
        return count


def key_bytes(key: str | bytes) -> bytes:
    """A key as the table stores it: UTF-8, and the SHA-1 of one longer than KEY_MAX."""
    kb = key if isinstance(key, bytes) else key.encode("utf-8", "surrogatepass")
    if len(kb) > KEY_MAX:
        kb = b"\x00sha1:" + hashlib.sha1(kb).digest()
    return kb


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_dicts: dict[str, SharedDict] = {}


def create_all(conf: dict[str, Any]) -> None:
    """The master, before forking: one dictionary per entry of
    ``nginx_config.http.lua_shared_dict``. Existing ones are kept (a HUP keeps the
    counters, as nginx keeps its zones); new names are added."""
    from gateway.config import parse_size
    wanted = ((conf.get("nginx_config") or {}).get("http") or {}).get("lua_shared_dict") or {}
    for name, size in wanted.items():
        if name not in _dicts:
            _dicts[name] = SharedDict(name, parse_size(size))


def get(name: str) -> SharedDict:
    """The dictionary ``name``. One missing from the config (a worker started without a
    master, e.g. in a unit test) is created on first use: then shared by this process's
    children only."""
    d = _dicts.get(name)
    if d is None:
        d = _dicts[name] = SharedDict(name, 10 * 1024 * 1024)
    return d
