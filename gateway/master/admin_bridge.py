"""The master's side of Admin API writes: workers ask, the master talks to etcd.

Workers serve the Admin API but never hold an etcd connection: they send small storage
requests (get, list, put, delete, gen_id) over a DEALER socket to this bridge's ROUTER
socket; the bridge runs each on a small thread pool with the master's etcd settings and
answers with the etcd revision it produced. All ZeroMQ sockets belong to the bridge thread
(sockets are not thread-safe); pool threads hand their answers back through an inproc PUSH.

Keys travel in APISIX's canonical form (`/apisix/routes/1`) whatever `deployment.etcd.prefix`
is, exactly like the keys workers see in their snapshot; the bridge alone knows the prefix.
Messages are msgpack maps. A request: ``{"id": n, "op": ..., ...}``; an answer:
``{"id": n, "ok": True, ...}`` or ``{"id": n, "ok": False, "error": "..."}`` (etcd down, ...).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgpack
import zmq

from gateway.core import plane
from gateway.core.log import log
from gateway.master.admin_replace import Known, replace
from gateway.master.etcd_client import (
    EtcdClient,
    EtcdError,
    KV,
    b64,
    cmp_create_revision,
    cmp_mod_revision,
    header_revision,
    op_put,
    parse_kv,
    prefix_range_end,
)
from gateway.master.etcd_source import CANONICAL_PREFIX, normalize_prefix

#: etcd requests the bridge runs at once (admin traffic is light; this bounds etcd load)
POOL_SIZE = 4
#: the key APISIX keeps the enabled plugin list under
PLUGINS_KEY = "/apisix/plugins"
#: the scratch key whose revision becomes POST ids (as APISIX)
GEN_ID_KEY = "/apisix/gen_id"


class StoreOps:
    """The storage operations, on canonical keys, against one etcd client per thread."""

    def __init__(self, conf: dict[str, Any]):
        self.conf = conf
        self.prefix = normalize_prefix(conf["deployment"]["etcd"]["prefix"])
        self._local = threading.local()
        self._known = Known()

    def client(self) -> EtcdClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = EtcdClient.from_conf(self.conf)
        return client

    def etcd_key(self, key: str) -> str:
        if not key.startswith(CANONICAL_PREFIX):
            raise ValueError("key outside %s: %s" % (CANONICAL_PREFIX, key))
        return self.prefix + key[len(CANONICAL_PREFIX):]

    def _kv(self, kv: KV) -> dict[str, Any]:
        key = CANONICAL_PREFIX + kv.key[len(self.prefix):]
        return {"key": key, "value": kv.value, "create": kv.create_revision,
                "mod": kv.mod_revision}

    # each returns the answer's fields; raise EtcdError/ValueError on failure
    def op_get(self, req: dict) -> dict:
        reply = self.client()._call("/v3/kv/range", {"key": b64(self.etcd_key(req["key"]))})
        kvs = reply.get("kvs") or ()
        return {"kv": self._kv(parse_kv(kvs[0])) if kvs else None,
                "rev": header_revision(reply)}

    def op_list(self, req: dict) -> dict:
        kvs, rev = self.client().range_prefix(self.etcd_key(req["prefix"]))
        return {"kvs": [self._kv(kv) for kv in kvs], "rev": rev}

    def op_put(self, req: dict) -> dict:
        """Put a value, optionally with a TTL lease and a compare: `mod` = the key's mod
        revision must still be this (PATCH), `absent` = the key must not exist."""
        client = self.client()
        key = self.etcd_key(req["key"])
        lease = client.lease_grant(int(req["ttl"])) if req.get("ttl") else 0
        compare = []
        if req.get("mod") is not None:
            compare.append(cmp_mod_revision(key, int(req["mod"])))
        if req.get("absent"):
            compare.append(cmp_create_revision(key, 0))
        reply = client.txn(compare, [op_put(key, req["value"], lease)])
        return {"rev": header_revision(reply), "succeeded": bool(reply.get("succeeded"))}

    def op_replace(self, req: dict) -> dict:
        """A PUT that keeps the replaced version's `create_time` (see admin_replace.py)."""
        client = self.client()
        lease = client.lease_grant(int(req["ttl"])) if req.get("ttl") else 0
        return replace(client, self._known, self.etcd_key(req["key"]), req["value"], lease)

    def op_delete(self, req: dict) -> dict:
        """Delete a key and, with `children`, every key under `key + "/"` in one txn
        (a consumer goes with its credentials)."""
        key = self.etcd_key(req["key"])
        ops = [{"request_delete_range": {"key": b64(key)}}]
        if req.get("children"):
            child = (key + "/").encode()
            ops.append({"request_delete_range": {"key": b64(child),
                                                 "range_end": b64(prefix_range_end(child))}})
        reply = self.client().txn([], ops)
        responses = reply.get("responses") or []
        deleted = int(((responses[0] if responses else {}).get("response_delete_range")
                       or {}).get("deleted") or 0)
        return {"rev": header_revision(reply), "deleted": deleted}

    def op_gen_id(self, req: dict) -> dict:
        rev = self.client().put(self.etcd_key(GEN_ID_KEY), "0")
        return {"rev": rev}

    def run(self, req: dict) -> dict:
        handler = getattr(self, "op_" + str(req.get("op")), None)
        if handler is None:
            return {"ok": False, "error": "unknown store operation %r" % req.get("op")}
        try:
            answer = handler(req)
        except (EtcdError, ValueError, KeyError) as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a worker waits for an answer, always give one
            log.exception("admin store operation %s failed", req.get("op"))
            return {"ok": False, "error": "internal error: %s" % exc.__class__.__name__}
        answer["ok"] = True
        return answer


class AdminBridge:
    """A thread with the ROUTER socket workers' Admin API talks to."""

    def __init__(self, conf: dict[str, Any], prefix: str, master_pid: int):
        self.ops = StoreOps(conf)
        self.endpoint = plane.admin_endpoint(prefix, master_pid)
        self._inbox = "inproc://gateway-admin-%d" % id(self)
        self._ctx = zmq.Context()
        self._pool = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="admin-etcd")
        self._local = threading.local()
        self._running = False
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        #: the enabled plugin names, read fresh from config.yaml (set by the master)
        self.plugin_names: Callable[[], list[str]] = lambda: list(conf.get("plugins") or [])
        #: fans the reload command out to the workers (set by the master)
        self.on_reload_plugins: Callable[[], None] = lambda: None
        #: API-driven standalone mode: the in-memory config source and the snapshot revision
        self.configs: Any = None
        self.snapshot_rev: Callable[[], int] = lambda: 0

    def reload_plugins(self) -> dict:
        """`PUT /apisix/admin/plugins/reload`: record the enabled list under /apisix/plugins
        (as APISIX does) and tell every worker to re-import its plugins."""
        names = self.plugin_names()
        answer = self.ops.run({"op": "put", "key": PLUGINS_KEY,
                               "value": json.dumps([{"name": n} for n in names]).encode()})
        if answer.get("ok"):
            self.on_reload_plugins()
        return answer

    def configs_op(self, req: dict) -> dict:
        """API-driven standalone mode: the in-memory document (see configs_source.py)."""
        if self.configs is None:
            return {"ok": False, "error": "not in API-driven standalone mode"}
        if req["op"] == "configs_get":
            return {"ok": True, "config": self.configs.get()}
        self.configs.put(req["config"])
        return {"ok": True, "rev": self.snapshot_rev()}

    def start(self) -> None:
        path = plane.endpoint_path(self.endpoint)
        if os.path.exists(path):
            os.unlink(path)
        self._running = True
        self._thread = threading.Thread(target=self._run, name="admin-bridge", daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(2)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._ctx.destroy(linger=0)
        try:
            os.unlink(plane.endpoint_path(self.endpoint))
        except OSError:
            pass

    def _run(self) -> None:
        router = self._ctx.socket(zmq.ROUTER)
        router.bind(self.endpoint)
        inbox = self._ctx.socket(zmq.PULL)
        inbox.bind(self._inbox)
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(inbox, zmq.POLLIN)
        self._ready.set()
        try:
            while self._running:
                for sock, _ in poller.poll(200):
                    while True:
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        if sock is inbox:
                            router.send_multipart(frames)
                        elif len(frames) == 2:
                            self._pool.submit(self._serve, frames[0], frames[1])
        except Exception:
            log.exception("admin bridge thread failed")
        finally:
            router.close(linger=0)
            inbox.close(linger=0)

    def _serve(self, identity: bytes, data: bytes) -> None:
        try:
            req = msgpack.unpackb(data, raw=False)
            if req.get("op") == "reload_plugins":
                answer = self.reload_plugins()
            elif req.get("op") in ("configs_get", "configs_put"):
                answer = self.configs_op(req)
            else:
                answer = self.ops.run(req)
            answer["id"] = req.get("id")
        except Exception as exc:  # noqa: BLE001
            answer = {"ok": False, "error": "bad store request: %s" % exc}
        push = getattr(self._local, "push", None)
        if push is None:
            push = self._local.push = self._ctx.socket(zmq.PUSH)
            push.connect(self._inbox)
        push.send_multipart((identity, msgpack.packb(answer, use_bin_type=True)))
