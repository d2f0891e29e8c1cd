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
  heartbeat {"t": "hb", "rev": R}
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


def encode_heartbeat(rev: int) -> bytes:
    return msgpack.packb({"t": "hb", "rev": rev}, use_bin_type=True)


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
    unpacked on first use and cached until a delta replaces or deletes its key."""

    __slots__ = ("packed", "_values")

    def __init__(self) -> None:
        self.packed: dict[str, bytes] = {}
        self._values: dict[str, Any] = {}

    def replace_all(self, packed: dict[str, bytes]) -> None:
        self.packed = packed
        self._values = {}

    def apply(self, ops: list) -> None:
        packed, values = self.packed, self._values
        for key, data in ops:
            values.pop(key, None)
            if data is None:
                packed.pop(key, None)
            else:
                packed[key] = data

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            value = self._values[key] = unpack_object(self.packed[key])
            return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.packed)

    def __len__(self) -> int:
        return len(self.packed)

    def keys_under(self, prefix: str) -> list[str]:
        """Keys of one kind, e.g. ``keys_under("/apisix/routes/")``."""
        return [k for k in self.packed if k.startswith(prefix)]
