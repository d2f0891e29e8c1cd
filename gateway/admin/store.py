"""The Admin API's storage: etcd, reached through the master (worker DEALER → master ROUTER).

Many admin requests may wait at once (one greenlet each); one DEALER socket carries them
all, and a reader greenlet hands each answer to its waiter by request id. A write returns
the etcd revision it produced; `Store.settle(rev)` then waits until the tables of every
serving worker (this one's included) serve that revision, so the HTTP answer of a write is
never ahead of the data path, whichever worker accepts the next request.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.event
import msgpack
import zmq.green as zmq

from gateway.core import plane
from gateway.core.log import log

#: how long an admin request waits for etcd (through the master) before answering 503
STORE_TIMEOUT = 10.0
#: how long a write waits for every worker's tables to reach its revision
SETTLE_TIMEOUT = 5.0


class StoreError(Exception):
    """etcd could not be reached or refused the operation (the Admin API answers 503)."""


@dataclass
class Item:
    key: str
    value: Any              # the decoded JSON (None when the stored bytes are not JSON)
    create: int
    mod: int

    @classmethod
    def from_wire(cls, kv: dict) -> Item:
        try:
            value = json.loads(kv["value"])
        except ValueError:
            value = None
        return cls(kv["key"], value, kv["create"], kv["mod"])


class Store:
    def __init__(self, prefix: str, master_pid: int, subscriber: Any):
        self.subscriber = subscriber
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(plane.admin_endpoint(prefix, master_pid))
        self._ids = itertools.count(1)
        self._pending: dict[int, gevent.event.AsyncResult] = {}
        self._reader = gevent.spawn(self._read)

    def close(self) -> None:
        self._reader.kill(block=False)
        self._ctx.destroy(linger=0)

    def _read(self) -> None:
        while True:
            try:
                data = self._sock.recv()
                answer = msgpack.unpackb(data, raw=False)
            except zmq.ZMQError:
                return
            except Exception:  # noqa: BLE001
                log.exception("bad answer from the master's admin bridge")
                continue
            waiter = self._pending.pop(answer.get("id"), None)
            if waiter is not None:
                waiter.set(answer)

    def call(self, op: str, **args: Any) -> dict:
        request_id = next(self._ids)
        waiter = gevent.event.AsyncResult()
        self._pending[request_id] = waiter
        args.update(op=op, id=request_id)
        try:
            self._sock.send(msgpack.packb(args, use_bin_type=True))
            answer = waiter.get(timeout=STORE_TIMEOUT)
        except gevent.Timeout:
            raise StoreError("etcd did not answer within %ds" % STORE_TIMEOUT) from None
        finally:
            self._pending.pop(request_id, None)
        if not answer.get("ok"):
            raise StoreError(answer.get("error") or "store error")
        return answer

    # ------------------------------------------------------------------ operations
    def get(self, key: str) -> Item | None:
        kv = self.call("get", key=key)["kv"]
        return Item.from_wire(kv) if kv else None

    def list(self, prefix: str) -> list[Item]:
        return [Item.from_wire(kv) for kv in self.call("list", prefix=prefix)["kvs"]]

    def put(self, key: str, value: Any, ttl: int | None = None, mod: int | None = None,
            absent: bool = False) -> tuple[bool, int]:
        """(succeeded, revision); succeeded is False when a `mod`/`absent` compare failed."""
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        answer = self.call("put", key=key, value=data, ttl=ttl, mod=mod, absent=absent)
        return answer["succeeded"], answer["rev"]

    def replace(self, key: str, value: dict, ttl: int | None = None) -> tuple[bool, Any, int]:
        """A PUT: `value` with its `create_time` taken from the version it replaces, if any.
        (existed, the create_time written, revision)."""
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        answer = self.call("replace", key=key, value=data, ttl=ttl)
        return answer["existed"], answer["create_time"], answer["rev"]

    def delete(self, key: str, children: bool = False) -> tuple[int, int]:
        """(number deleted, revision)."""
        answer = self.call("delete", key=key, children=children)
        return answer["deleted"], answer["rev"]

    def gen_id(self) -> str:
        """A new POST id: the etcd revision of a write to /apisix/gen_id, 20 digits."""
        return "%020d" % self.call("gen_id")["rev"]

    def settle(self, rev: int) -> None:
        if not self.subscriber.wait_served(rev, SETTLE_TIMEOUT):
            log.warning("admin write at revision %d not served by every worker after %ds; "
                        "answering anyway", rev, SETTLE_TIMEOUT)
