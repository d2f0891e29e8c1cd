"""`bin/gateway`: start | stop | quit | reload | restart | test | init_etcd | version.

Like nginx and APISIX's CLI, it talks to a running master only through the pid file
(PREFIX/logs/gateway.pid) and signals. Every verb exits 0 on success, or non-zero with one
clear line on stderr.
"""

from __future__ import annotations

import argparse
import errno
import os
import select
import signal
import sys
import time
from pathlib import Path

from gateway import APISIX_VERSION, __version__, config
from gateway.config import ConfigError

#: the directory holding conf/ and logs/ when -p is not given: the install directory
DEFAULT_PREFIX = str(Path(__file__).resolve().parent.parent)
#: how long `start` waits for the master to report that its workers serve
START_TIMEOUT = 60.0
#: how long `stop` waits for a fast stop to finish
STOP_TIMEOUT = 30.0
#: oldest etcd server `init_etcd` accepts (APISIX's requirement too)
ETCD_MIN_VERSION = (3, 4, 0)
#: directory keys `init_etcd` writes under the prefix (each holds the value `init_dir`)
ETCD_DIRS = ("routes", "upstreams", "services", "plugins", "ssls", "stream_routes",
             "plugin_metadata", "consumers", "global_rules", "protos", "plugin_configs",
             "consumer_groups", "secrets")


class CliError(Exception):
    pass


# ---------------------------------------------------------------------- pid file
def pid_path(prefix: str) -> str:
    return os.path.join(prefix, "logs", "gateway.pid")


def alive(pid: int) -> bool:
    """kill(pid, 0) semantics (EPERM = alive), except that a zombie has exited."""
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def running_pid(prefix: str) -> int | None:
    """The master's pid if the pid file names a live process; a stale file is removed."""
    path = pid_path(prefix)
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return None
    if pid > 0 and alive(pid):
        return pid
    try:
        os.unlink(path)
    except OSError:
        pass
    return None


def wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


# ---------------------------------------------------------------------- checks
def load_conf(args) -> dict:
    return config.load(args.prefix, args.config)


def check_plugins(conf: dict, prefix: str) -> None:
    """Load the enabled plugin modules: a broken one stops the node like a bad config."""
    from gateway.core import plugins
    try:
        plugins.load(conf, prefix, warn_missing=False)
    except plugins.PluginError as exc:
        raise CliError(str(exc)) from None


def check_all(args) -> dict:
    """Validate config.yaml, the enabled plugins and, in standalone mode,
    conf/apisix.yaml; raise CliError."""
    try:
        conf = load_conf(args)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    check_plugins(conf, args.prefix)
    if config.config_provider(conf) == "yaml":
        from gateway.master.yaml_source import StandaloneError, load_file
        path = os.path.join(args.prefix, "conf", "apisix.yaml")
        try:
            _, problems = load_file(path)
        except StandaloneError as exc:
            raise CliError(str(exc)) from None
        if problems:
            raise CliError(problems[0])
    return conf


# ---------------------------------------------------------------------- verbs
def cmd_version(args) -> None:
    print("gateway %s (APISIX %s compatible)" % (__version__, APISIX_VERSION))


def cmd_test(args) -> None:
    check_all(args)
    print("configuration test is successful")


def cmd_init_etcd(args) -> None:
    """Check every endpoint's version, then write the `init_dir` directory keys (as APISIX)."""
    try:
        conf = load_conf(args)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if config.config_provider(conf) != "etcd":
        raise CliError("etcd is not configured: deployment.role %s uses the %s config provider"
                       % (conf["deployment"]["role"], config.config_provider(conf)))

    from gateway.master.etcd_client import (
        EtcdClient,
        EtcdError,
        cmp_create_revision,
        op_put,
        safe_endpoint,
        version_tuple,
    )
    from gateway.master.etcd_source import PLACEHOLDER, normalize_prefix

    client = EtcdClient.from_conf(conf)
    healthy = []
    tries = max(1, int(conf["deployment"]["etcd"].get("startup_retry") or 1))
    for host in client.hosts:
        for attempt in range(1, tries + 1):
            try:
                server = str(client.version(host).get("etcdserver") or "")
                break
            except EtcdError as exc:
                print("gateway: warning: etcd endpoint %s (try %d of %d): %s"
                      % (safe_endpoint(host), attempt, tries, exc), file=sys.stderr)
        else:
            continue
        if version_tuple(server) < ETCD_MIN_VERSION:
            raise CliError("etcd endpoint %s runs etcd %s; at least %s is required"
                           % (safe_endpoint(host), server or "(unknown)",
                              ".".join(map(str, ETCD_MIN_VERSION))))
        healthy.append(host)
    if len(healthy) * 2 <= len(client.hosts):
        raise CliError("init_etcd: only %d of %d etcd endpoints are healthy"
                       % (len(healthy), len(client.hosts)))
    prefix = normalize_prefix(conf["deployment"]["etcd"]["prefix"])
    try:
        for name in ETCD_DIRS:
            # written only where missing: a restart must not bump revisions or wake watchers
            key = "%s/%s/" % (prefix, name)
            client.txn([cmp_create_revision(key, 0)], [op_put(key, PLACEHOLDER)])
    except EtcdError as exc:
        raise CliError("init_etcd: %s" % exc) from None
    finally:
        client.close()


def cmd_start(args) -> None:
    try:
        conf = load_conf(args)
        generated = config.ensure_admin_key(args.prefix, args.config, conf)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    for name in generated:   # the key itself is never printed nor logged
        print("generated a random admin key for %r and wrote it to %s"
              % (name, args.config or os.path.join(args.prefix, "conf", "config.yaml")))
    check_plugins(conf, args.prefix)
    upgrading = "GUNICORN_PID" in os.environ      # we are the new master of a USR2 upgrade
    if not upgrading:
        pid = running_pid(args.prefix)
        if pid is not None:
            raise CliError("gateway is already running (master pid %d)" % pid)
    os.makedirs(os.path.join(args.prefix, "logs"), exist_ok=True)
    if upgrading or args.foreground:
        run_master(args, conf, ready_fd=None)
        return
    read_fd, write_fd = os.pipe()
    if os.fork() == 0:                      # daemon: detach, then run the master
        os.close(read_fd)
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        try:
            run_master(args, conf, ready_fd=write_fd)
        except SystemExit as exc:
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        os._exit(0)
    os.close(write_fd)
    wait_started(read_fd, args.prefix)


def wait_started(read_fd: int, prefix: str) -> None:
    """Block until the daemonized master says `ok` (its workers serve) or reports an error."""
    deadline = time.monotonic() + START_TIMEOUT
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise CliError("gateway did not start within %ds; see %s"
                           % (START_TIMEOUT, os.path.join(prefix, "logs", "error.log")))
        ready, _, _ = select.select([read_fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(read_fd, 4096)
        if not chunk:
            break
        data += chunk
    os.close(read_fd)
    line = data.decode("utf-8", "replace").strip()
    if line == "ok":
        return
    if line.startswith("error: "):
        raise CliError("gateway failed to start: %s" % line[len("error: "):])
    raise CliError("gateway failed to start; see %s"
                   % os.path.join(prefix, "logs", "error.log"))


def run_master(args, conf: dict, ready_fd: int | None) -> None:
    from gateway.core import log as logmod
    from gateway.master.app import GatewayApp
    from gateway.master.arbiter import Master
    from gateway.master.listeners import ListenError

    nginx = conf["nginx_config"]
    logmod.setup(config.resolve_path(args.prefix, nginx["error_log"]), nginx["error_log_level"])
    app = GatewayApp(args.prefix, args.config, conf)
    app.ready_fd = ready_fd
    try:
        Master(app, pid_path(args.prefix)).run()
    except ListenError as exc:
        logmod.log.error("%s", exc)
        if ready_fd is not None:
            os.write(ready_fd, ("error: %s\n" % exc).encode())
        raise SystemExit(1) from None
    except RuntimeError as exc:               # e.g. gunicorn's pid file refusal
        logmod.log.error("%s", exc)
        if ready_fd is not None:
            os.write(ready_fd, ("error: %s\n" % exc).encode())
        raise SystemExit(1) from None


def signal_master(args, sig: int) -> int:
    pid = running_pid(args.prefix)
    if pid is None:
        raise CliError("gateway is not running (no live pid in %s)" % pid_path(args.prefix))
    os.kill(pid, sig)
    return pid


def cmd_stop(args) -> None:
    pid = signal_master(args, signal.SIGTERM)
    if not wait_exit(pid, STOP_TIMEOUT):
        raise CliError("gateway master %d did not stop within %ds" % (pid, STOP_TIMEOUT))


def cmd_quit(args) -> None:
    try:
        timeout = config.parse_duration(load_conf(args)["nginx_config"]["worker_shutdown_timeout"])
    except ConfigError:
        timeout = 240.0
    pid = signal_master(args, signal.SIGQUIT)
    if not wait_exit(pid, timeout + STOP_TIMEOUT):
        raise CliError("gateway master %d did not quit in time" % pid)


def cmd_reload(args) -> None:
    check_all(args)
    signal_master(args, signal.SIGHUP)


def cmd_restart(args) -> None:
    check_all(args)
    if running_pid(args.prefix) is not None:
        cmd_stop(args)
    cmd_start(args)


VERBS = {"start": cmd_start, "stop": cmd_stop, "quit": cmd_quit, "reload": cmd_reload,
         "restart": cmd_restart, "test": cmd_test, "init_etcd": cmd_init_etcd,
         "version": cmd_version}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gateway", description="API gateway (APISIX work-alike)")
    parser.add_argument("verb", choices=sorted(VERBS), help="what to do")
    parser.add_argument("-p", "--prefix", default=os.environ.get("GATEWAY_PREFIX", DEFAULT_PREFIX),
                        help="directory holding conf/ and logs/ (default: the install directory)")
    parser.add_argument("-c", "--config", default=None,
                        help="config file to use instead of PREFIX/conf/config.yaml")
    parser.add_argument("-f", "--foreground", action="store_true",
                        help="start: stay attached instead of daemonizing")
    args = parser.parse_args(argv)
    args.prefix = os.path.abspath(args.prefix)
    if args.config:
        args.config = os.path.abspath(args.config)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        VERBS[args.verb](args)
    except CliError as exc:
        print("gateway: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
