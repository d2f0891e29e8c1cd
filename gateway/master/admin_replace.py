"""An Admin API PUT in one etcd transaction instead of a read and a write.

A PUT keeps the object's `create_time` and answers 201 (created) or 200 (replaced), so it
needs the previous value. Reading it first costs a second etcd round trip per write; instead
the bridge remembers, per key, the mod revision and `create_time` of the last version it
wrote or read, and writes with a compare on that mod revision (or, for a key it does not
know, on the key being absent). When the guess is stale the same transaction's failure
branch returns the current version, and the write is tried again with it. So the stored
`create_time` always comes from the version the write replaced, as with read-then-write, and
the common case (a known key, or a new one) is a single transaction.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from gateway.master.etcd_client import (
    EtcdClient,
    cmp_create_revision,
    cmp_mod_revision,
    header_revision,
    op_put,
    op_range,
    parse_kv,
)

#: keys remembered (oldest forgotten first); a forgotten key only costs one more round trip
MAX_KNOWN = 4096
#: compare-and-swap attempts before writing without a compare (APISIX's PUT never compares)
MAX_ATTEMPTS = 5

_MISSING = object()


class Known:
    """What the previous version of a key looked like: `(mod revision, create_time)`;
    `create_time` is _MISSING when the stored value is not an object or has none."""

    def __init__(self, size: int = MAX_KNOWN):
        self._size = size
        self._items: dict[str, tuple[int, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[int, Any] | None:
        return self._items.get(key)

    def set(self, key: str, mod: int, create_time: Any) -> None:
        with self._lock:
            self._items.pop(key, None)
            self._items[key] = (mod, create_time)
            while len(self._items) > self._size:
                del self._items[next(iter(self._items))]

    def forget(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


def replace(client: EtcdClient, known: Known, key: str, value: bytes,
            lease: int = 0) -> dict[str, Any]:
    """Write `value` (JSON, its `create_time` set to now) under `key`, keeping the replaced
    version's `create_time`. The answer: `rev`, `existed` and the `create_time` written."""
    doc = json.loads(value)
    if not isinstance(doc, dict):
        raise ValueError("replace: the value must be a JSON object")
    sent = doc.get("create_time")
    guess = known.get(key)
    for attempt in range(MAX_ATTEMPTS + 1):
        create_time = sent if guess is None or guess[1] is _MISSING else guess[1]
        data = value
        if create_time != sent:
            doc["create_time"] = create_time
            data = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        if attempt == MAX_ATTEMPTS:
            compare = []
        elif guess is None:
            compare = [cmp_create_revision(key, 0)]
        else:
            compare = [cmp_mod_revision(key, guess[0])]
        reply = client.txn(compare, [op_put(key, data, lease)], [op_range(key)])
        if reply.get("succeeded"):
            rev = header_revision(reply)
            known.set(key, rev, create_time)
            return {"rev": rev, "existed": guess is not None, "create_time": create_time}
        guess = _current(reply)
        if guess is None:
            known.forget(key)
        else:
            known.set(key, *guess)
    raise AssertionError("unreachable: the last attempt has no compare")


def _current(reply: dict) -> tuple[int, Any] | None:
    """The failure branch's range: the key's current version, or None when it is absent."""
    responses = reply.get("responses") or [{}]
    kvs = (responses[0].get("response_range") or {}).get("kvs") or ()
    if not kvs:
        return None
    kv = parse_kv(kvs[0])
    try:
        stored = json.loads(kv.value)
    except ValueError:
        stored = None
    create_time = stored.get("create_time", _MISSING) if isinstance(stored, dict) else _MISSING
    return kv.mod_revision, create_time
