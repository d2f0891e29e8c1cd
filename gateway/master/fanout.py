"""ZeroMQ fan-out of the config snapshot from the master to its workers (Clone pattern).

One thread in the master owns every ZeroMQ socket (sockets are not thread-safe):
  PUB     deltas and a heartbeat each second carrying the current revision;
  ROUTER  answers a worker's snapshot request with the full, compressed snapshot;
  PULL    (inproc) receives deltas from the config source threads via `publish()`.
Because publishing and snapshot answers happen on one thread, a worker never sees a snapshot
older than a delta it already holds.

Workers report on the ROUTER the revision they have applied; the thread announces on the PUB
the revision every serving worker has applied (served.py), which an Admin write waits for.

Workers fork from the master while this thread runs. That is safe: a child never touches
this context (each worker makes its own after fork) and the thread does not exist there.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

import zmq

from gateway.core import plane
from gateway.core.log import log
from gateway.master.served import ServedRevisions
from gateway.master.snapshot import Delta, Snapshot


class Fanout:
    def __init__(self, snapshot: Snapshot, prefix: str, master_pid: int):
        self.snapshot = snapshot
        self.pub_endpoint, self.router_endpoint = plane.endpoints(prefix, master_pid)
        self._inbox = "inproc://gateway-fanout-%d" % id(self)
        self._ctx = zmq.Context()
        self._local = threading.local()
        self._thread: threading.Thread | None = None
        self._running = False
        self._ready = threading.Event()
        #: called (on the fan-out thread) with a worker's pid once it serves
        self.on_ready: Callable[[int], None] = lambda pid: None
        #: called (on the fan-out thread) with a worker's pid and the plugins-reload
        #: generation it has just done
        self.on_reloaded: Callable[[int, int], None] = lambda pid, generation: None
        #: the pids of the workers that serve now (set by the master; called on this thread)
        self.serving_pids: Callable[[], Collection[int]] = frozenset
        self.served = ServedRevisions()

    def start(self) -> None:
        for endpoint in (self.pub_endpoint, self.router_endpoint):
            path = plane.endpoint_path(endpoint)
            if os.path.exists(path):
                os.unlink(path)   # left by a master with our pid that died hard
        self._running = True
        self._thread = threading.Thread(target=self._run, name="fanout", daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def publish(self, delta: Delta | None) -> None:
        """Send a delta to every worker (callable from any thread)."""
        if delta is None or not self._running:
            return
        push = getattr(self._local, "push", None)
        if push is None:
            push = self._local.push = self._ctx.socket(zmq.PUSH)
            push.connect(self._inbox)
        push.send_multipart((b"%d" % delta.rev, delta.message))

    def publish_control(self, what: str, data: Any = None) -> None:
        """Send a command (plane.encode_control) to every worker (callable from any thread)."""
        if not self._running:
            return
        push = getattr(self._local, "push", None)
        if push is None:
            push = self._local.push = self._ctx.socket(zmq.PUSH)
            push.connect(self._inbox)
        push.send_multipart((b"0", plane.encode_control(what, data)))

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(2)
        self._ctx.destroy(linger=0)
        for endpoint in (self.pub_endpoint, self.router_endpoint):
            try:
                os.unlink(plane.endpoint_path(endpoint))
            except OSError:
                pass

    def _run(self) -> None:
        ctx = self._ctx
        pub = ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.SNDHWM, 100000)
        pub.bind(self.pub_endpoint)
        router = ctx.socket(zmq.ROUTER)
        router.bind(self.router_endpoint)
        inbox = ctx.socket(zmq.PULL)
        inbox.bind(self._inbox)
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(inbox, zmq.POLLIN)
        self._ready.set()
        # heartbeats carry the last revision *published*, never one whose delta is still in
        # the inbox: a worker would take the heartbeat for a lost delta and resync for nothing
        published = self.snapshot.rev
        announced = -1      # the last revision announced as served by every worker
        next_beat = time.monotonic()
        try:
            while self._running:
                served = self.served.lowest(self.serving_pids(), published)
                if served > announced:
                    pub.send_multipart((plane.TOPIC, plane.encode_served(served)))
                    announced = served
                now = time.monotonic()
                if now >= next_beat:
                    pub.send_multipart((plane.TOPIC,
                                        plane.encode_heartbeat(published, announced)))
                    next_beat = now + plane.HEARTBEAT_INTERVAL
                wait_ms = max(1, int((next_beat - now) * 1000))
                for sock, _ in poller.poll(min(wait_ms, 200)):
                    if sock is inbox:
                        while True:
                            try:
                                rev, delta = inbox.recv_multipart(zmq.NOBLOCK)
                            except zmq.Again:
                                break
                            pub.send_multipart((plane.TOPIC, delta))
                            published = max(published, int(rev))
                    else:
                        self._answer(router, pub)
        except Exception:
            log.exception("config fan-out thread failed")
        finally:
            for sock in (pub, router, inbox):
                sock.close(linger=0)

    def _answer(self, router: zmq.Socket, pub: zmq.Socket) -> None:
        while True:
            try:
                frames = router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) < 2:
                continue
            if frames[1] == plane.SNAPSHOT_REQUEST:
                router.send_multipart((frames[0], self.snapshot.encoded()))
            elif frames[1] == plane.RELAY and len(frames) == 3:
                # a worker's news for all workers (health changes): one hop, no state here
                pub.send_multipart((plane.TOPIC, frames[2]))
            elif frames[1] == plane.APPLIED and len(frames) == 3:
                try:
                    pid, rev = frames[2].split()
                    self.served.report_applied(int(pid), int(rev))
                except ValueError:
                    log.error("bad applied report from a worker: %r", frames[2])
            elif frames[1] == plane.WORKER_READY and len(frames) == 3:
                try:
                    self.on_ready(int(frames[2]))
                except Exception:
                    log.exception("worker ready callback failed")
            elif frames[1] == plane.PLUGINS_RELOADED and len(frames) == 3:
                try:
                    pid, generation = frames[2].split()
                    self.on_reloaded(int(pid), int(generation))
                except Exception:
                    log.exception("worker reloaded callback failed")
