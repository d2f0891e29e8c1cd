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
import gevent.lock
from gunicorn.workers.base import Worker
from setproctitle import setproctitle

from gateway import config
from gateway.core import log as logmod
from gateway.core import memory
from gateway.core import plugins as plugin_registry
from gateway.core.log import AccessLog, log
from gateway.worker.server import HttpServer
from gateway.worker.subscriber import Subscriber
from gateway.worker import healthcheck, metrics
from gateway.worker.resolver import DNS
from gateway.worker.response import render_access
from gateway.worker.table import PATCHES_BEFORE_FULL_BUILD, Table

#: how long a booting worker waits for the master's config snapshot
BOOT_SYNC_TIMEOUT = 10.0
#: the loop timer period: heartbeat, deadline sweep, access-log flush
TICK = 1.0
#: seconds between the patch that reached PATCHES_BEFORE_FULL_BUILD and the full build
COMPACT_AFTER = 1.0
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
            self.access_log = AccessLog(path, render=render_access)
        except OSError as exc:
            raise RuntimeError("cannot open the access log %s: %s" % (path, exc.strerror)) from None
        admin_address, control_address = config.admin_address(conf), config.control_address(conf)
        by_address = {tuple(lnr.sock.getsockname()[:2]): lnr.sock for lnr in self.sockets}
        admin_sock = by_address.pop(admin_address, None) if admin_address else None
        control_sock = by_address.pop(control_address, None) if control_address else None
        metrics_address = config.prometheus_address(conf)
        metrics_sock = by_address.pop(metrics_address, None) if metrics_address else None
        tls_socks = [by_address.pop(a) for a in config.ssl_listen_addresses(conf)
                     if a in by_address]
        proxy_socks = list(by_address.values())
        # None when disabled: the data path then skips formatting the line altogether
        self.server = HttpServer(proxy_socks, conf, self.access_log if path else None,
                                 tls_socks)
        self.build_lock = gevent.lock.Semaphore()
        #: the background full build that follows many patched changes (apply_config)
        self.compaction: gevent.Greenlet | None = None
        DNS.configure(conf["apisix"].get("dns_resolver_valid"),
                      conf["apisix"].get("resolver_timeout"))
        DNS.start(self.dns_changed)   # re-resolves domain nodes in the background
        try:   # Table.build compiles plugin confs with this set (plugins.current())
            plugin_registry.load(conf, self.app.prefix)
        except plugin_registry.PluginError as exc:
            raise RuntimeError(str(exc)) from None
        self.subscriber = Subscriber(self.app.prefix, self.ppid, self.apply_config)
        self.subscriber.on_control = self.on_control
        healthcheck.SHARING.setup(os.path.join(self.app.prefix, "logs", "healthcheck.lock"),
                                  lambda message: self.subscriber.relay("health", message))
        if not self.subscriber.sync(BOOT_SYNC_TIMEOUT):
            raise RuntimeError("no config snapshot from the master within %ds"
                               % BOOT_SYNC_TIMEOUT)
        self.admin = self.start_admin(admin_sock) if admin_sock is not None else None
        self.control = self.start_control(control_sock) if control_sock is not None else None
        self.metrics = None
        if metrics.enabled(conf):
            metrics.METRICS.setup(conf)
            if metrics_sock is not None:
                self.metrics = metrics.ExportServer(metrics_sock, conf)
                self.metrics.start()
        memory.release()     # collects, and returns what the first build freed (RSS)
        gc.freeze()          # the config just loaded lives long: keep it out of GC passes
        self.server.start()
        self.subscriber.start()
        self.timer = gevent.get_hub().loop.timer(TICK, TICK)
        self.timer.start(self.tick)
        self.subscriber.report_ready()

    def start_admin(self, sock):
        """The Admin API on this worker (its etcd writes go through the master)."""
        from gateway.admin.context import AdminContext
        from gateway.admin.server import AdminServer
        from gateway.admin.store import Store
        self.admin_store = Store(self.app.prefix, self.ppid, self.subscriber)
        from gateway.worker.tls import admin_context
        try:   # deployment.admin.https_admin (+ admin_api_mtls)
            ssl_context = admin_context(self.conf["deployment"]["admin"], self.app.prefix)
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
        server = AdminServer(sock, AdminContext(self.conf, self.admin_store, self.plugins),
                             ssl_context)
        server.start()
        return server

    def start_control(self, sock):
        """The Control API (/v1/...) on this worker."""
        from gateway.worker.control import ControlApp, ControlServer
        app = ControlApp(self.conf, lambda: self.subscriber.store, plugin_registry.current,
                         lambda: self.on_control("plugins_reload"))
        server = ControlServer(sock, app)
        server.start()
        return server

    def plugins(self):
        """The plugin registry as it is now (it changes on plugins/reload)."""
        return plugin_registry.current()

    def on_control(self, what: str, data: object = None) -> None:
        """A message the master fans out to every worker."""
        if what == "health" and isinstance(data, dict):
            healthcheck.SHARING.received(data)
        elif what == "plugins_reload":
            # the enabled list is read again from config.yaml, as APISIX's reload does
            try:
                fresh = config.load(self.app.prefix, self.app.config_path)
                self.conf["plugins"] = fresh.get("plugins")
            except config.ConfigError as exc:
                log.error("plugins reload: config.yaml does not load, keeping the list: %s",
                          exc)
            self.reload_plugins()
            if isinstance(data, int):   # the master waits for every worker's word
                self.subscriber.report_reloaded(data)

    def apply_config(self, store, rev: int, changed: list[str] | None = None) -> None:
        """Serve ``store`` at revision ``rev``: the table patched for ``changed`` keys (a
        delta that touches routes alone), else built whole."""
        started = time.monotonic()
        with self.build_lock:     # one build at a time: config changes and DNS changes
            self.last_config = (store, rev)
            table = None
            if changed is not None:
                table = self.server.table.patched(store, changed, self.conf)
            how = " (routes patched)"
            if table is None:
                table = Table.build(store, self.conf)
                how = ""
            self.server.table = table
            if not table.same_health:
                healthcheck.activate_table(table)  # start new health checkers, stop stale ones
        log.info("config revision %d applied in %.1f ms%s", rev,
                 (time.monotonic() - started) * 1000, how)
        if table.patches >= PATCHES_BEFORE_FULL_BUILD and self.compaction is None:
            # what the patches left behind goes with a full build, off the write's path
            # (the write is served already: a 10,000-route build takes ~80 ms)
            self.compaction = gevent.spawn_later(COMPACT_AFTER, self.compact_table)

    def compact_table(self) -> None:
        self.compaction = None
        store, rev = self.last_config
        try:
            self.apply_config(store, rev)
        except Exception:  # noqa: BLE001 - the patched table keeps serving
            log.exception("rebuilding the table at revision %d failed; keeping the patched "
                          "one", rev)

    def reload_plugins(self) -> None:
        """PUT /apisix/admin/plugins/reload: re-import the plugin modules, then rebuild the
        table with them (requests keep the table they started with). A broken module keeps
        the running set."""
        try:
            plugin_registry.reload(self.conf, self.app.prefix)
        except plugin_registry.PluginError as exc:
            log.error("plugins reload failed, keeping the running plugins: %s", exc)
            return
        store, rev = self.last_config
        self.apply_config(store, rev)
        log.info("plugins reloaded: %d enabled", len(plugin_registry.current() or ()))

    def dns_changed(self) -> None:
        """A domain node's address changed (gateway.worker.resolver): rebuild the table."""
        store, rev = self.last_config
        self.apply_config(store, rev)

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
        for extra in (self.admin, self.control, self.metrics):
            if extra is not None:
                extra.stop()
        self.timer.stop()
        healthcheck.REGISTRY.stop()
        DNS.stop()
        self.subscriber.stop()
        self.access_log.close()

    def tick(self) -> None:
        self.notify()
        healthcheck.SHARING.tick()
        self.server.sweep()
        metrics.METRICS.tick(self.server)
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
