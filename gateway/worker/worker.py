"""The worker process: a gunicorn worker class on gevent that loads no WSGI app.

It serves the inherited listening sockets with the callback-driven HTTP server
(`gateway.worker.http`), keeps its config in sync with the master over ZeroMQ, and swaps in a
freshly compiled table on every config change. A loop timer (not a greenlet per request)
drives the heartbeat to the master, per-connection deadlines and the access-log flush.

Signals, with nginx's meanings: QUIT graceful stop (stop accepting, finish in-flight requests
up to worker_shutdown_timeout), TERM/INT fast stop, USR1 reopen logs. HUP, WINCH, USR2 and
TTIN/TTOU are the master's business and ignored here.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import time

import gevent
import gevent.event
from gunicorn.workers.base import Worker
from setproctitle import setproctitle

from gateway import config
from gateway.core import log as logmod
from gateway.core.log import AccessLog, log
from gateway.worker.server import HttpServer
from gateway.worker.subscriber import Subscriber
from gateway.worker.table import Table

#: how long a booting worker waits for the master's config snapshot
BOOT_SYNC_TIMEOUT = 10.0
#: the loop timer period: heartbeat, deadline sweep, access-log flush
TICK = 1.0
#: the only gevent loop fast enough for the hot path (the cffi loops cost ~12 µs per request)
REQUIRED_LOOP = "gevent.libev.corecext"


class GatewayWorker(Worker):
    """One worker process. gunicorn's Worker gives us the heartbeat file and the boot-error
    protocol (a worker that cannot boot exits with WORKER_BOOT_ERROR and the master stops)."""

    def init_process(self) -> None:
        setproctitle("gateway: worker process")
        if self.app.ready_fd is not None:     # the start-up pipe is the master's business
            os.close(self.app.ready_fd)
        gevent.reinit()
        loop = gevent.get_hub().loop
        if type(loop).__module__ != REQUIRED_LOOP:
            raise RuntimeError("gevent loop %s.%s is too slow for the data path; unset "
                               "GEVENT_LOOP/GEVENT_CORE_CFFI_ONLY to use %s"
                               % (type(loop).__module__, type(loop).__name__, REQUIRED_LOOP))
        self.conf: dict = self.app.conf
        self.stopping = gevent.event.Event()
        self.graceful = True
        self.init_signals()
        self.boot()
        self.booted = True
        self.run()

    def load_wsgi(self) -> None:  # pragma: no cover - never called: we load no WSGI app
        pass

    def init_signals(self) -> None:
        for sig in (signal.SIGHUP, signal.SIGWINCH, signal.SIGUSR2, signal.SIGTTIN,
                    signal.SIGTTOU, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        gevent.signal_handler(signal.SIGQUIT, self.stop, True)
        gevent.signal_handler(signal.SIGTERM, self.stop, False)
        gevent.signal_handler(signal.SIGINT, self.stop, False)
        gevent.signal_handler(signal.SIGUSR1, self.reopen_logs)
        gevent.signal_handler(signal.SIGABRT, self.abort)

    # ------------------------------------------------------------------ boot
    def boot(self) -> None:
        conf = self.conf
        http = conf["nginx_config"]["http"]
        path = config.resolve_path(self.app.prefix, http["access_log"]) \
            if http.get("enable_access_log") else None
        try:
            self.access_log = AccessLog(path)
        except OSError as exc:
            raise RuntimeError("cannot open the access log %s: %s" % (path, exc.strerror)) from None
        # None when disabled: the data path then skips formatting the line altogether
        self.server = HttpServer([lnr.sock for lnr in self.sockets], conf,
                                 self.access_log if path else None)
        self.subscriber = Subscriber(self.app.prefix, self.ppid, self.apply_config)
        if not self.subscriber.sync(BOOT_SYNC_TIMEOUT):
            raise RuntimeError("no config snapshot from the master within %ds"
                               % BOOT_SYNC_TIMEOUT)
        gc.collect()
        gc.freeze()          # the config just loaded lives long: keep it out of GC passes
        self.server.start()
        self.subscriber.start()
        self.timer = gevent.get_hub().loop.timer(TICK, TICK)
        self.timer.start(self.tick)
        self.subscriber.report_ready()

    def apply_config(self, store, rev: int) -> None:
        started = time.monotonic()
        self.server.table = Table.build(store, self.conf)
        log.info("config revision %d applied in %.1f ms", rev, (time.monotonic() - started) * 1000)

    # ------------------------------------------------------------------ running
    def run(self) -> None:
        self.stopping.wait()
        server = self.server
        server.stop_accepting()
        if self.graceful:
            server.close_idle()
            deadline = time.monotonic() + self.cfg.graceful_timeout
            while server.connections and time.monotonic() < deadline:
                gevent.sleep(0.05)
            if server.connections:
                log.warning("worker %d: %d connections still open after "
                            "worker_shutdown_timeout, closing them", os.getpid(),
                            server.connections)
        server.close_all()
        self.timer.stop()
        self.subscriber.stop()
        self.access_log.close()

    def tick(self) -> None:
        self.notify()
        self.server.sweep()
        self.access_log.flush()
        if os.getppid() != self.ppid and not self.stopping.is_set():
            log.error("worker %d: the master is gone, stopping", os.getpid())
            self.stop(True)

    def stop(self, graceful: bool) -> None:
        if self.stopping.is_set():
            if not graceful:          # TERM during a graceful drain: hurry up
                self.graceful = False
                self.server.close_all()
            return
        self.graceful = graceful
        self.alive = False
        self.stopping.set()

    def reopen_logs(self) -> None:
        logmod.reopen()
        self.access_log.reopen()

    def abort(self) -> None:
        """SIGABRT from the master: this worker missed its heartbeat (stuck loop)."""
        log.error("worker %d aborted by the master (heartbeat timeout)", os.getpid())
        sys.exit(1)
