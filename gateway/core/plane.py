"""The config plane's wire format and endpoints, shared by the master and the workers.

The master fans the config snapshot out with ZeroMQ's Clone pattern: a PUB socket carries
deltas and heartbeats, a ROUTER socket answers a worker's request for the full snapshot.

Encoding is two-level: every config object is msgpack-packed on its own and the messages carry
``key -> packed bytes``. A worker then decodes the message envelope quickly (bytes objects
only) and unpacks each object on first use, so loading 10,000 routes never freezes its loop
for long (measured: 175-285 ms for one-level msgpack of 10k routes, 9-16 ms two-level). The full
snapshot is zstd-compressed (5 MB → ~260 kB in a few ms).

Messages (msgpack maps):
  delta     {"t": "delta", "rev": R, "prev": P, "ops": [[key, packed | None], ...]}
  heartbeat {"t": "hb", "rev": R, "served": S}
  served    {"t": "served", "rev": S}   S: every serving worker has applied it
  snapshot  zstd(msgpack {"t": "snap", "rev": R, "objs": {key: packed}})
A ``None`` in ops deletes the key.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

import msgpack
import zstandard

#: ZeroMQ topic prefix of config messages on the PUB socket
TOPIC = b"cfg"
#: a worker's request for the full snapshot on the ROUTER socket
SNAPSHOT_REQUEST = b"snap?"
#: a worker telling the master it has loaded the config and accepts connections: [b"ready", pid]
WORKER_READY = b"ready"
#: a worker's message for every worker, relayed by the master: [b"relay", encoded control]
RELAY = b"relay"
#: a worker telling the master it re-imported its plugins: [b"reloaded", b"pid generation"]
PLUGINS_RELOADED = b"reloaded"
#: a worker telling the master which revision it serves now: [b"applied", b"pid rev"]
APPLIED = b"applied"
#: seconds between heartbeats; a worker that sees a heartbeat ahead of its revision resyncs
HEARTBEAT_INTERVAL = 1.0

_IPC_PATH_MAX = 100   # sun_path is 108 bytes; keep a margin


def endpoints(prefix: str, master_pid: int) -> tuple[str, str]:
    """The (pub, router) ipc:// endpoints of the master with this pid.

    The pid is in the name so two masters (old and new during a USR2 upgrade) coexist. They
    live under PREFIX/logs when the path fits in a unix socket name, else in the temp dir.
    """
    base = os.path.join(os.path.abspath(prefix), "logs")
    if len(base) + 40 > _IPC_PATH_MAX:
        base = tempfile.gettempdir()
    stem = os.path.join(base, "gateway-%d" % master_pid)
    return "ipc://%s-pub.sock" % stem, "ipc://%s-router.sock" % stem


def admin_endpoint(prefix: str, master_pid: int) -> str:
    """The ipc:// endpoint where the master's admin bridge takes workers' store requests."""
    return endpoints(prefix, master_pid)[1].replace("-router.sock", "-admin.sock")


def endpoint_path(endpoint: str) -> str:
    """The filesystem path of an ipc:// endpoint (to remove it on exit)."""
    return endpoint[len("ipc://"):]


def pack_object(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def unpack_object(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def encode_delta(rev: int, prev: int, ops: list[tuple[str, bytes | None]]) -> bytes:
    return msgpack.packb({"t": "delta", "rev": rev, "prev": prev, "ops": ops}, use_bin_type=True)


def encode_heartbeat(rev: int, served: int) -> bytes:
    """The last revision published, and the one every serving worker has applied (a lost
    `served` announcement costs a waiting Admin write one heartbeat interval at most)."""
    return msgpack.packb({"t": "hb", "rev": rev, "served": served}, use_bin_type=True)


def encode_served(rev: int) -> bytes:
    """Every serving worker has applied revision `rev` (see gateway/master/served.py)."""
    return msgpack.packb({"t": "served", "rev": rev}, use_bin_type=True)


def encode_control(what: str, data: Any = None) -> bytes:
    """A message for every worker that is not config data ("plugins_reload", "health")."""
    return msgpack.packb({"t": "ctl", "what": what, "rev": 0, "data": data},
                         use_bin_type=True)


def encode_snapshot(rev: int, objs: Mapping[str, bytes], level: int = 3) -> bytes:
    raw = msgpack.packb({"t": "snap", "rev": rev, "objs": dict(objs)}, use_bin_type=True)
    return zstandard.ZstdCompressor(level=level).compress(raw)


def decode_message(data: bytes) -> dict:
    """Decode a delta or heartbeat (packed objects stay bytes)."""
    return msgpack.unpackb(data, raw=False)


def decode_snapshot(data: bytes) -> dict:
    raw = zstandard.ZstdDecompressor().decompress(data)
    return msgpack.unpackb(raw, raw=False)


class LazyObjects(Mapping):
    """The worker's config store: ``key -> object`` over ``key -> packed bytes``, each object
    unpacked on every read.

    Nothing unpacked is cached: the table build reads every object once and keeps only what
    it compiles, and a cache would pin the unpacked dicts of every object for the life of the
    worker (about 7 MB of a 10,000-route worker's RSS, more than the packed bytes themselves,
    to save ~1 µs per object per rebuild). Readers that need an object later (the Control
    API, a route's ``conf``) unpack it again, see :class:`PackedObject`."""

    __slots__ = ("packed",)

    def __init__(self) -> None:
        self.packed: dict[str, bytes] = {}

    def replace_all(self, packed: dict[str, bytes]) -> None:
        self.packed = packed

    def apply(self, ops: list) -> None:
        packed = self.packed
        for key, data in ops:
            if data is None:
                packed.pop(key, None)
            else:
                packed[key] = data

    def __getitem__(self, key: str) -> Any:
        return unpack_object(self.packed[key])

    def __contains__(self, key: object) -> bool:   # Mapping's would unpack the object
        return key in self.packed

    def __iter__(self) -> Iterator[str]:
        return iter(self.packed)

    def __len__(self) -> int:
        return len(self.packed)

    def keys_under(self, prefix: str) -> list[str]:
        """Keys of one kind, e.g. ``keys_under("/apisix/routes/")``."""
        return [k for k in self.packed if k.startswith(prefix)]


class PackedObject(Mapping):
    """A read-only mapping over one packed (msgpack) object, unpacked again on every access.

    For data a worker keeps per route but reads only on cold paths (``Route.conf``: the
    prometheus ``name`` label, diagnostics): holding the packed bytes, which the store keeps
    anyway, costs one small object instead of a dict tree per route. Do not use it on a hot
    path: every read pays an unpack (~1 µs)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def unpack(self) -> Any:
        return unpack_object(self.data)

    def __getitem__(self, key: str) -> Any:
        return self.unpack()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.unpack().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.unpack()

    def __iter__(self) -> Iterator[str]:
        return iter(self.unpack())

    def __len__(self) -> int:
        return len(self.unpack())

    def __repr__(self) -> str:
        return "PackedObject(%r)" % (self.unpack(),)
