"""The master process: gunicorn's Arbiter with nginx's signal meanings.

gunicorn maps signals differently (there TERM is graceful and QUIT fast); users of APISIX
expect nginx's, since `apisix stop`/`quit` send TERM/QUIT:

  TERM, INT  fast stop: workers get TERM and exit at once
  QUIT       graceful stop: workers stop accepting and drain, up to worker_shutdown_timeout
  HUP        reload: re-read and validate config.yaml; a bad file keeps the old config and
             logs why; otherwise start new workers, wait until they serve, retire the old
             ones gracefully (QUIT)
  USR1       reopen log files (master and workers)
  USR2       binary upgrade: the pid file becomes gateway.pid.oldbin and a new master starts
             on the inherited listeners
  WINCH      gracefully stop this master's workers (after USR2, before QUIT to the old one)
  TTIN/TTOU  one worker more / less

Besides the worker lifecycle the master owns the config plane: the snapshot, the config source
(the standalone YAML file or the etcd watch) and the ZeroMQ fan-out. It never serves traffic.
Signal handlers only enqueue; the main loop below handles one signal at a time.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import sys
import threading
import time

from gunicorn.arbiter import Arbiter
from gunicorn.errors import HaltServer
from gunicorn.pidfile import Pidfile
from setproctitle import setproctitle

from gateway import config
from gateway.config import ConfigError
from gateway.core import log as logmod
from gateway.core import memory, schemas
from gateway.core import shdict
from gateway.core.log import NOTICE, log
from gateway.master import listeners
from gateway.worker import metrics
from gateway.master.admin_bridge import AdminBridge
from gateway.master.certstore import CertStore
from gateway.master.configs_source import ConfigsSource
from gateway.master.app import GatewayApp
from gateway.master.etcd_client import EtcdClient
from gateway.master.etcd_source import EtcdSource
from gateway.master.fanout import Fanout
from gateway.master.snapshot import Snapshot
from gateway.master.yaml_source import YamlSource

#: how long new workers may take to load the config and start serving
WORKER_READY_TIMEOUT = 30.0
#: how long `PUT /apisix/admin/plugins/reload` waits for the workers to confirm (less
#: than the worker's wait for the answer, gateway.admin.store.STORE_TIMEOUT)
PLUGINS_RELOAD_TIMEOUT = 5.0
#: how long a fast stop waits for workers before SIGKILL
FAST_STOP_TIMEOUT = 5.0


def _source_settings(conf: dict) -> tuple:
    """What decides the config source and how it connects: a reload that changes any of it
    reconnects (another etcd, prefix, credentials, or role)."""
    deployment = conf["deployment"]
    return (config.config_provider(conf), config.admin_enabled(conf),
            repr(deployment.get("etcd")))


def all_addresses(conf: dict) -> list[tuple[str, int]]:
    """Every listener the workers inherit: the proxy's, the Admin API's, the Control API's,
    the metrics export server's."""
    addresses = config.listen_addresses(conf)
    for extra in (*config.ssl_listen_addresses(conf),   # TLS proxy listeners
                  config.admin_address(conf), config.control_address(conf),
                  config.prometheus_address(conf)):
        if extra is not None and extra not in addresses:
            addresses.append(extra)
    return addresses


class Master(Arbiter):
    """gunicorn's arbiter loop (reap, murder, manage workers) with our signal map."""

    def __init__(self, app: GatewayApp, pid_path: str):
        self.pid_path = pid_path
        self.retiring: dict[int, tuple[object, float]] = {}   # pid -> (worker, kill deadline)
        self.snapshot = Snapshot()
        self.fanout: Fanout | None = None
        self.admin_bridge: AdminBridge | None = None
        self.source: YamlSource | EtcdSource | None = None
        self.ready_pids: set[int] = set()
        self.ready_cond = threading.Condition()
        #: plugins reloads asked for, and the last one each worker (pid) confirmed
        self.reload_generation = 0
        self.reloaded: dict[int, int] = {}
        super().__init__(app)

    @property
    def conf(self) -> dict:
        return self.app.conf

    # ------------------------------------------------------------------ start-up
    def start(self) -> None:
        # before any worker forks (prometheus-client picks its value class on import);
        # a USR2 child shares its parent's directory instead of wiping it
        metrics.prepare_dir(self.app.prefix, wipe="GUNICORN_FD" not in os.environ)
        if not self.LISTENERS and "GUNICORN_FD" not in os.environ:
            self.LISTENERS = listeners.open_all(all_addresses(self.conf),
                                                self.cfg, self.log)
        shdict.create_all(self.conf)   # before any fork: every worker maps the same zones
        super().start()
        if self.master_pid:
            # a USR2 child: the old master renamed its pid file to .oldbin, ours is the pid file
            self.proc_name = self.cfg.proc_name
        self.pidfile = Pidfile(self.pid_path)
        self.pidfile.create(self.pid)
        self.start_config_plane()

    def init_signals(self) -> None:
        super().init_signals()
        # a signal must not interrupt the master's blocking calls halfway
        for sig in self.SIGNALS:
            signal.siginterrupt(sig, False)

    def start_config_plane(self) -> None:
        schemas.without_quick_checks()
        self.fanout = Fanout(self.snapshot, self.app.prefix, self.pid)
        self.fanout.on_ready = self.worker_ready
        self.fanout.on_reloaded = self.worker_reloaded
        self.fanout.serving_pids = self.serving_pids
        self.fanout.start()
        self.start_source()
        # a worker maps every page the master has when it forks, free ones included: loading
        # a big config (parse, schema checks) leaves megabytes free but held; give them back
        self.snapshot.compact()
        memory.release()

    def start_source(self) -> None:
        """The config source config.yaml names (and the Admin API's bridge to etcd)."""
        self.certstore = CertStore(self.conf)
        provider = config.config_provider(self.conf)
        if provider == "yaml" and self.conf["deployment"]["role"] == "traditional":
            # API-driven standalone: the config is PUT through the Admin API, kept in memory
            self.source = ConfigsSource(self.on_objects)
            self.source.load_now()
            self.start_admin_bridge()
        elif provider == "yaml":
            path = os.path.join(self.app.prefix, "conf", "apisix.yaml")
            self.source = YamlSource(path, self.on_objects)
            self.source.load_now()
            self.source.start()
        elif provider == "etcd":
            etcd = self.conf["deployment"]["etcd"]
            persist = etcd.get("snapshot_file")
            self.source = EtcdSource(
                EtcdClient.from_conf(self.conf), etcd["prefix"], self.on_objects,
                self.on_changes, config.resolve_path(self.app.prefix, persist) if persist else None)
            self.source.load_now()
            self.source.start()
            if config.admin_enabled(self.conf):
                self.start_admin_bridge()
        else:
            log.warning("config provider %r is not available yet; serving an empty config",
                        provider)

    def start_admin_bridge(self) -> None:
        self.admin_bridge = AdminBridge(self.conf, self.app.prefix, self.pid)
        self.admin_bridge.plugin_names = self.enabled_plugins
        self.admin_bridge.on_reload_plugins = self.reload_plugins
        if isinstance(self.source, ConfigsSource):
            self.admin_bridge.configs = self.source
            self.admin_bridge.snapshot_rev = lambda: self.snapshot.rev
        self.admin_bridge.start()

    def enabled_plugins(self) -> list[str]:
        """The `plugins:` list of config.yaml as it is on disk now (plugins/reload re-reads
        it, as APISIX does); the running one when the file does not load."""
        try:
            return list(config.load(self.app.prefix, self.app.config_path).get("plugins") or [])
        except (ConfigError, SystemExit):
            return list(self.conf.get("plugins") or [])

    def on_objects(self, objects: dict, rev: int | None = None) -> None:
        """A config source's whole new config (at etcd revision `rev`, when it has one)."""
        assert self.fanout is not None
        objects = self.certstore.prepare_all(objects)
        self.fanout.publish(self.snapshot.replace(objects, rev))

    def on_changes(self, changes: list, rev: int) -> None:
        """A config source's individual puts/deletes at etcd revision `rev`."""
        assert self.fanout is not None
        changes = self.certstore.prepare_changes(changes)
        self.fanout.publish(self.snapshot.apply(changes, rev))

    def worker_ready(self, pid: int) -> None:
        with self.ready_cond:
            self.ready_pids.add(pid)
            self.ready_cond.notify_all()

    def serving_pids(self) -> frozenset[int]:
        """The workers that accept connections now: ready, and neither exited nor retiring
        (the fan-out thread asks, for the revision every one of them serves)."""
        with self.ready_cond:
            return frozenset(self.ready_pids.intersection(self.WORKERS))

    def reload_plugins(self) -> None:
        """`PUT /apisix/admin/plugins/reload` (the admin bridge's thread): every worker
        re-imports its plugins; returns once each worker of this moment has done it (or
        is gone, or PLUGINS_RELOAD_TIMEOUT passed), so that the next Admin write, which
        any worker may validate, knows the new plugins."""
        assert self.fanout is not None
        with self.ready_cond:
            self.reload_generation += 1
            generation = self.reload_generation
            waiting = set(self.WORKERS.copy())
        self.fanout.publish_control("plugins_reload", generation)
        deadline = time.monotonic() + PLUGINS_RELOAD_TIMEOUT
        with self.ready_cond:
            while True:
                waiting = {pid for pid in waiting if pid in self.WORKERS
                           and self.reloaded.get(pid, 0) < generation}
                left = deadline - time.monotonic()
                if not waiting or left <= 0:
                    break
                self.ready_cond.wait(min(left, 0.05))
        if waiting:
            log.warning("plugins reload: worker(s) %s did not confirm within %.0f s",
                        ", ".join(map(str, sorted(waiting))), PLUGINS_RELOAD_TIMEOUT)

    def worker_reloaded(self, pid: int, generation: int) -> None:
        with self.ready_cond:
            self.reloaded[pid] = max(generation, self.reloaded.get(pid, 0))
            self.ready_cond.notify_all()

    def run(self) -> None:
        try:
            self.start()
            setproctitle("gateway: master process %s" % " ".join(sys.argv[1:]))
            self.manage_workers()
            if self.wait_ready(list(self.WORKERS), WORKER_READY_TIMEOUT):
                self.tell_ready(b"ok\n")
                log.log(NOTICE, "gateway started: master %d, %d workers", self.pid,
                        len(self.WORKERS))
            else:
                raise HaltServer("workers did not start serving in time", 1)
            while True:
                self.maybe_promote_master()
                for sig in self.wait_for_signals(timeout=1.0):
                    name = self.SIG_NAMES.get(sig)
                    handler = getattr(self, "handle_%s" % name, None) if name else None
                    if handler is None:
                        continue
                    if sig != signal.SIGCHLD:
                        log.info("signal %s received", name.upper())
                    handler()
                self.murder_workers()
                self.retire_overdue()
                self.manage_workers()
        except StopIteration:
            self.halt()
        except KeyboardInterrupt:
            self.halt()
        except HaltServer as inst:
            self.halt(reason=inst.reason, exit_status=inst.exit_status)
        except SystemExit:
            raise
        except Exception as exc:
            log.exception("unhandled exception in the master loop")
            self.halt(reason=str(exc), exit_status=1)

    def tell_ready(self, msg: bytes) -> None:
        """Tell the `bin/gateway start` that daemonized us how start-up went (once)."""
        fd = self.app.ready_fd
        if fd is None:
            return
        self.app.ready_fd = None        # workers forked from now on have nothing to close
        try:
            os.write(fd, msg)
            os.close(fd)
        except OSError:
            pass

    def wait_ready(self, pids: list[int], timeout: float) -> bool:
        """Wait until every worker in `pids` has loaded the config and accepts connections.

        False when one of them died first (its boot error halts the master via reap) or the
        time ran out.
        """
        deadline = time.monotonic() + timeout
        while True:
            self.reap_workers()
            with self.ready_cond:
                if all(pid in self.ready_pids for pid in pids):
                    return True
                if any(pid not in self.WORKERS for pid in pids):
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.ready_cond.wait(min(left, 0.05))

    # ------------------------------------------------------------------ signals
    def handle_term(self) -> None:
        self.stop(graceful=False)
        raise StopIteration

    handle_int = handle_term

    def handle_quit(self) -> None:
        self.stop(graceful=True)
        raise StopIteration

    def handle_hup(self) -> None:
        self.reload()

    def handle_usr1(self) -> None:
        logmod.reopen()
        self.kill_workers(signal.SIGUSR1)

    def handle_usr2(self) -> None:
        if self.reexec_pid or self.master_pid:
            log.warning("USR2 ignored: an upgrade is already in progress")
            return
        if self.pidfile is not None:
            self.pidfile.rename(self.pid_path + ".oldbin")
        self.START_CTX["args"] = [sys.executable, "-m", "gateway.cli"] + sys.argv[1:]
        self.reexec()

    def handle_winch(self) -> None:
        log.info("gracefully stopping the workers (WINCH)")
        self.num_workers = 0
        self.retire(list(self.WORKERS))

    def maybe_promote_master(self) -> None:
        if self.master_pid and self.master_pid != os.getppid():
            log.info("the old master is gone; this master takes over")
            self.master_pid = 0
            os.environ.pop("GUNICORN_PID", None)

    # ------------------------------------------------------------------ reload
    def reload(self) -> None:
        """HUP: nothing of the running gateway changes until new workers serve the new config.

        A config.yaml that does not validate, listeners that cannot be opened, or new workers
        that fail to boot all leave the old workers, listeners and settings in place.
        """
        old_conf = self.app.conf
        try:
            conf = self.app.reload_conf()
        except (ConfigError, SystemExit) as exc:
            log.error("reload failed, keeping the running configuration: %s", exc)
            return
        old_listeners = self.LISTENERS
        new_addresses = all_addresses(conf)
        if [tuple(lnr.cfg_addr[:2]) for lnr in old_listeners] != new_addresses:
            # addresses kept keep their sockets (reopening them would collide with
            # ourselves); only the new ones are opened
            kept = {tuple(lnr.cfg_addr[:2]): lnr for lnr in old_listeners}
            try:
                fresh = listeners.open_all([a for a in new_addresses if a not in kept],
                                           self.cfg, self.log)
                opened = iter(fresh)
                self.LISTENERS = [kept[a] if a in kept else next(opened)
                                  for a in new_addresses]
            except listeners.ListenError as exc:
                self.app.restore(old_conf)
                log.error("reload failed, keeping the running configuration: %s", exc)
                return
        shdict.create_all(conf)   # new zones only; existing ones keep their counters
        old = list(self.WORKERS)
        new = [self.spawn_worker() for _ in range(self.cfg.workers)]
        try:
            ready = self.wait_ready(new, WORKER_READY_TIMEOUT)
            reason = "new workers did not start serving in time"
        except HaltServer as exc:
            ready, reason = False, exc.reason
        if not ready:
            log.error("reload failed, keeping the running configuration: %s", reason)
            for pid in new:
                if pid in self.WORKERS:
                    self.retiring[pid] = (self.WORKERS.pop(pid), time.monotonic() + FAST_STOP_TIMEOUT)
                    self.kill_worker(pid, signal.SIGTERM)
            if self.LISTENERS is not old_listeners:
                for lnr in self.LISTENERS:
                    if lnr not in old_listeners:
                        lnr.close()
                self.LISTENERS = old_listeners
            self.app.restore(old_conf)
            return
        if self.LISTENERS is not old_listeners:
            for lnr in old_listeners:
                if lnr not in self.LISTENERS:
                    lnr.close()
        self.num_workers = self.cfg.workers
        self.timeout = self.cfg.timeout
        logmod.setup(config.resolve_path(self.app.prefix, conf["nginx_config"]["error_log"]),
                     conf["nginx_config"]["error_log_level"])
        if _source_settings(conf) != _source_settings(old_conf):
            log.info("reload: config source settings changed, reconnecting")
            self.stop_source()
            self.start_source()
        elif self.source is not None:
            self.source.load_now()
        self.retire(old)
        log.info("reload done: %d new workers", len(new))

    # ------------------------------------------------------------------ worker lifecycle
    def retire(self, pids: list[int]) -> None:
        """Ask workers to finish gracefully (QUIT); they leave the pool at once."""
        deadline = time.monotonic() + self.cfg.graceful_timeout
        for pid in pids:
            worker = self.WORKERS.pop(pid, None)
            if worker is None:
                continue
            self.retiring[pid] = (worker, deadline)
            self.kill_worker(pid, signal.SIGQUIT)

    def retire_overdue(self) -> None:
        now = time.monotonic()
        for pid, (_, deadline) in list(self.retiring.items()):
            if now >= deadline:
                log.warning("worker %d did not finish within worker_shutdown_timeout; killed", pid)
                self.kill_worker(pid, signal.SIGKILL)
                self.retiring.pop(pid, None)

    def reap_workers(self) -> None:
        try:
            while True:
                wpid, status = os.waitpid(-1, os.WNOHANG)
                if not wpid:
                    break
                if wpid == self.reexec_pid:
                    self.reexec_pid = 0
                    self.upgrade_failed()
                    continue
                metrics.worker_exited(wpid)
                with self.ready_cond:
                    self.ready_pids.discard(wpid)
                    self.reloaded.pop(wpid, None)
                if self.retiring.pop(wpid, None) is not None:
                    continue
                worker = self.WORKERS.pop(wpid, None)
                if worker is None:
                    continue
                worker.tmp.close()
                self.report_exit(wpid, status)
        except OSError as exc:
            if exc.errno != errno.ECHILD:
                raise

    def report_exit(self, pid: int, status: int) -> None:
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            level = logging.INFO if sig == signal.SIGTERM else logging.ERROR
            log.log(level, "worker process %d exited on signal %d", pid, sig)
            return
        code = os.WEXITSTATUS(status)
        if code == self.WORKER_BOOT_ERROR:
            raise HaltServer("a worker failed to boot (see the error log)", self.WORKER_BOOT_ERROR)
        if code != 0:
            log.error("worker process %d exited with code %d", pid, code)

    def upgrade_failed(self) -> None:
        """The new master of a USR2 upgrade died: take the pid file back, as nginx does."""
        log.error("the new master of the upgrade exited; keeping this one")
        if self.pidfile is not None:
            self.pidfile.rename(self.pid_path)

    def manage_workers(self) -> None:
        if len(self.WORKERS) < self.num_workers:
            self.spawn_workers()
        extra = sorted(self.WORKERS.items(), key=lambda w: w[1].age)
        if len(extra) > self.num_workers:
            self.retire([pid for pid, _ in extra[:len(extra) - self.num_workers]])

    def spawn_worker(self) -> int:
        pid = super().spawn_worker()
        # the heartbeat file starts with a monotonic stamp, so a worker that hangs before its
        # first heartbeat is caught too (its mtime would otherwise be the wall-clock creation)
        self.WORKERS[pid].tmp.notify()
        return pid

    def spawn_workers(self) -> None:
        for _ in range(self.num_workers - len(self.WORKERS)):
            self.spawn_worker()

    def kill_worker(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise
            worker = self.WORKERS.pop(pid, None)
            if worker is not None:
                worker.tmp.close()
            self.retiring.pop(pid, None)

    # ------------------------------------------------------------------ stop
    def stop(self, graceful: bool = True) -> None:
        """Stop every worker: QUIT and wait up to worker_shutdown_timeout (graceful), or TERM
        and wait briefly (fast); SIGKILL whatever is left."""
        for lnr in self.LISTENERS:
            lnr.close()
        self.LISTENERS = []
        sig = signal.SIGQUIT if graceful else signal.SIGTERM
        limit = time.monotonic() + (self.cfg.graceful_timeout if graceful else FAST_STOP_TIMEOUT)
        pids = list(self.WORKERS) + list(self.retiring)
        self.retiring.update({pid: (w, limit) for pid, w in self.WORKERS.items()})
        self.WORKERS.clear()
        for pid in pids:
            self.kill_worker(pid, sig)
        while self.retiring and time.monotonic() < limit:
            if graceful and self.fast_stop_requested():
                log.info("fast stop requested during graceful stop")
                for pid in list(self.retiring):
                    self.kill_worker(pid, signal.SIGTERM)
                limit = min(limit, time.monotonic() + FAST_STOP_TIMEOUT)
                graceful = False
            self.reap_workers()
            time.sleep(0.05)
        for pid in list(self.retiring):
            self.kill_worker(pid, signal.SIGKILL)
        self.reap_workers()

    def fast_stop_requested(self) -> bool:
        """A TERM/INT that arrived while draining turns a graceful stop into a fast one."""
        fast = False
        while True:
            try:
                sig = self.SIG_QUEUE.get_nowait()
            except Exception:
                return fast
            fast = fast or sig in (signal.SIGTERM, signal.SIGINT)

    def halt(self, reason: str | None = None, exit_status: int = 0) -> None:
        if self.WORKERS or self.retiring:
            self.stop(graceful=False)
        if reason:
            (log.info if exit_status == 0 else log.error)("master exiting: %s", reason)
        else:
            log.info("master exiting")
        self.cleanup()
        # `bin/gateway start` hears about a failed start only once everything is cleaned up
        self.tell_ready(("error: %s\n" % (reason or "stopped")).encode())
        sys.exit(exit_status)

    def stop_source(self) -> None:
        if self.source is not None:
            self.source.stop()
            self.source = None
        if self.admin_bridge is not None:
            self.admin_bridge.stop()
            self.admin_bridge = None

    def cleanup(self) -> None:
        self.stop_source()
        if self.fanout is not None:
            self.fanout.stop()
        if self.pidfile is not None:
            self.pidfile.unlink()
