"""A worker's side of the config plane (ZeroMQ Clone pattern).

Subscribe first, then ask the master for the full snapshot, then apply the deltas that are
newer than it; a delta whose `prev` is not our revision, or a heartbeat ahead of us, means we
missed something: ask for the snapshot again. Runs as one ordinary greenlet (zmq.green), off
the hot path; each change calls `on_change(store, rev, keys)` where the worker rebuilds its
tables (``keys``: what a delta changed, so that a route-only change is patched; None after a
snapshot), then tells the master the revision it now serves (`plane.APPLIED`). The master
announces the revision every serving worker has applied (`served`), which an Admin API
write waits for (`wait_served`).

The ZeroMQ context is made here, after fork: a socket on a context inherited from the master
silently receives nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import gevent
import gevent.event
import zmq.green as zmq

from gateway.core import plane
from gateway.core.log import every, log

#: how long to wait for the master's snapshot answer before asking again
SNAPSHOT_TIMEOUT = 2.0


class Subscriber:
    def __init__(self, prefix: str, master_pid: int,
                 on_change: Callable[[plane.LazyObjects, int, list[str] | None], None]):
        self.on_change = on_change
        self.store = plane.LazyObjects()
        self.rev = -1
        #: the revision every serving worker of this node has applied (the master's word)
        self.served = -1
        self._pub, self._router = plane.endpoints(prefix, master_pid)
        self._ctx = zmq.Context()
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.SUBSCRIBE, plane.TOPIC)
        self._sub.setsockopt(zmq.RCVHWM, 100000)
        self._sub.connect(self._pub)
        self._dealer = self._ctx.socket(zmq.DEALER)
        self._dealer.setsockopt(zmq.LINGER, 0)
        self._dealer.connect(self._router)
        self._greenlet: gevent.Greenlet | None = None
        self._waiters: list[gevent.event.Event] = []
        #: called with a control message ("plugins_reload", "health") and its data
        self.on_control: Callable[[str, object], None] = lambda what, data: None

    def sync(self, timeout: float | None = None) -> bool:
        """Fetch and apply the full snapshot; False if the master did not answer in time."""
        deadline = None if timeout is None else gevent.get_hub().loop.now() + timeout
        while True:
            self._dealer.send(plane.SNAPSHOT_REQUEST)
            if self._dealer.poll(int(SNAPSHOT_TIMEOUT * 1000)):
                snap = plane.decode_snapshot(self._dealer.recv())
                self.store.replace_all(snap["objs"])
                self.rev = snap["rev"]
                self._changed()
                return True
            if every("snapshot-timeout", 10):
                log.warning("no config snapshot from the master yet, asking again")
            # the unanswered request may still be answered later: start from a clean socket
            self._dealer.close(linger=0)
            self._dealer = self._ctx.socket(zmq.DEALER)
            self._dealer.setsockopt(zmq.LINGER, 0)
            self._dealer.connect(self._router)
            if deadline is not None and gevent.get_hub().loop.now() >= deadline:
                return False

    def relay(self, what: str, data: object) -> None:
        """Send a control message to every worker of this node, through the master."""
        self._dealer.send_multipart((plane.RELAY, plane.encode_control(what, data)))

    def report_ready(self) -> None:
        """Tell the master this worker accepts connections, and (again) which revision it
        serves: the master counts a worker's revision only once it serves."""
        self._dealer.send_multipart((plane.WORKER_READY, str(os.getpid()).encode()))
        self._dealer.send_multipart((plane.APPLIED, b"%d %d" % (os.getpid(), self.rev)))

    def report_reloaded(self, generation: int) -> None:
        """Tell the master this worker did the plugins reload of that generation."""
        self._dealer.send_multipart((plane.PLUGINS_RELOADED,
                                     b"%d %d" % (os.getpid(), generation)))

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
        self._ctx.destroy(linger=0)

    def _run(self) -> None:
        while True:
            try:
                _, data = self._sub.recv_multipart()
                self._handle(plane.decode_message(data))
            except gevent.GreenletExit:
                raise
            except zmq.ZMQError:
                return
            except Exception:
                log.exception("config subscriber failed to apply a message; resyncing")
                self.sync()

    def _handle(self, msg: dict) -> None:
        rev = msg["rev"]
        if msg["t"] == "ctl":
            self.on_control(msg["what"], msg.get("data"))
            return
        if msg["t"] == "served":
            self._served(rev)
            return
        if msg["t"] == "hb":
            self._served(msg.get("served", -1))
            if rev > self.rev:
                log.info("config heartbeat at revision %d, this worker has %d: resync",
                         rev, self.rev)
                self.sync()
            return
        if rev <= self.rev:
            return                      # already in our snapshot
        if msg["prev"] != self.rev:
            log.info("config delta %d follows %d, this worker has %d: resync",
                     rev, msg["prev"], self.rev)
            self.sync()
            return
        self.rev = rev
        if msg["ops"]:
            self.store.apply(msg["ops"])
            self._changed([key for key, _value in msg["ops"]])
        else:
            self._moved()               # only the revision moved (a write we do not keep)

    def _changed(self, keys: list[str] | None = None) -> None:
        """The store moved to ``self.rev``: by a delta of ``keys``, or (None) whole."""
        try:
            self.on_change(self.store, self.rev, keys)
        except Exception:
            log.exception("applying config revision %d failed; keeping the previous tables",
                          self.rev)
        self._moved()

    def _moved(self) -> None:
        """This worker serves ``self.rev`` now: tell the master, wake the local waiters."""
        self._dealer.send_multipart((plane.APPLIED, b"%d %d" % (os.getpid(), self.rev)))
        self._wake()

    def _served(self, rev: int) -> None:
        if rev > self.served:
            self.served = rev
            self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for event in waiters:
            event.set()

    def wait_served(self, rev: int, timeout: float) -> bool:
        """Block this greenlet until this worker's tables and every other serving worker's
        serve revision `rev` (an Admin API write answers only then: a request after a write
        finds it, whichever worker accepts it). False after `timeout` seconds."""
        deadline = gevent.get_hub().loop.now() + timeout
        while self.rev < rev or self.served < rev:
            left = deadline - gevent.get_hub().loop.now()
            if left <= 0:
                return False
            event = gevent.event.Event()
            self._waiters.append(event)
            event.wait(left)
        return True
