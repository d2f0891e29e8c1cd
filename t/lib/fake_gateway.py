#!/usr/bin/env python3
"""A deliberately tiny stand-in for `bin/gateway`, to test the *harness* on its own.

The harness must be trusted before it judges the real gateway, and it was written while the
gateway did not run yet. This fake has the same outside: `start|stop|quit|reload|test|version
-p PREFIX`, a daemonized master with the pid file in logs/gateway.pid, N forked workers on a
shared listener (node_listen), nginx signal meanings (HUP, QUIT, TERM, INT, TTIN, TTOU, WINCH;
a killed worker is respawned), conf/apisix.yaml re-read every second (only with `#END`), exact
`uri`/`uris` routes proxied to the first node, an nginx-style logs/error.log.

Use: GATEWAY_TEST_BIN=t/lib/fake_gateway.py .venv/bin/python -m pytest t/harness
Never used by the real test suite.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

PREFIX = ""
ROUTES: dict[str, tuple[str, int]] = {}
CAUGHT = {signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM, signal.SIGINT, signal.SIGTTIN,
          signal.SIGTTOU, signal.SIGWINCH, signal.SIGCHLD, signal.SIGUSR1}
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "upgrade"}


def log(level: str, msg: str) -> None:
    line = f"{time.strftime('%Y/%m/%d %H:%M:%S')} [{level}] {os.getpid()}#0: {msg}\n"
    fd = os.open(os.path.join(PREFIX, "logs", "error.log"),
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, line.encode())
    os.close(fd)


def load_conf() -> dict:
    with open(os.path.join(PREFIX, "conf", "config.yaml")) as f:
        conf = yaml.safe_load(f) or {}
    port = (conf.get("apisix") or {}).get("node_listen", 9080)
    if not isinstance(port, int):
        raise ValueError(f"apisix.node_listen: expected int, got {port!r}")
    workers = (conf.get("nginx_config") or {}).get("worker_processes", 1)
    if not isinstance(workers, int) or workers < 1:
        raise ValueError("nginx_config.worker_processes: expected a positive int")
    return {"port": port, "workers": workers}


def load_routes() -> None:
    global ROUTES
    with open(os.path.join(PREFIX, "conf", "apisix.yaml")) as f:
        text = f.read()
    if not text.rstrip().endswith("#END"):
        log("warn", "apisix.yaml: missing #END, ignored")
        return
    routes: dict[str, tuple[str, int]] = {}
    for r in (yaml.safe_load(text) or {}).get("routes") or []:
        host, port = next(iter(r["upstream"]["nodes"])).split(":")
        for uri in r.get("uris") or [r["uri"]]:
            routes[uri] = (host, int(port))
    ROUTES = routes
    log("info", f"loaded {len(routes)} routes")


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"   # a garbage request line still gets a status line

    def log_message(self, *a: object) -> None:
        pass

    def __getattr__(self, name: str):
        if name.startswith("do_"):
            return self.serve
        raise AttributeError(name)

    def reply(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response_only(status)
        self.send_header("Server", "APISIX/3.0-fake")
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def serve(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        target = ROUTES.get(self.path.split("?")[0])
        if target is None:
            return self.reply(404, b'{"error_msg":"404 Route Not Found"}\n', [])
        conn = http.client.HTTPConnection(*target, timeout=60)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        try:
            conn.request(self.command, self.path, body, hdrs)
            r = conn.getresponse()
            data = r.read()
        except OSError as e:
            log("error", f"upstream {target} failed: {e}")
            return self.reply(502, b"bad gateway\n", [])
        self.reply(r.status, data, [(k, v) for k, v in r.getheaders()
                                    if k.lower() not in HOP and k.lower() != "server"])


def worker(sock: socket.socket) -> None:
    for s in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGWINCH, signal.SIGCHLD,
              signal.SIGINT, signal.SIGUSR1):
        signal.signal(s, signal.SIG_DFL)
    srv = ThreadingHTTPServer(sock.getsockname(), Proxy, bind_and_activate=False)
    srv.socket.close()
    srv.socket = sock
    srv.daemon_threads = False   # QUIT: wait for in-flight requests
    master = os.getppid()
    load_routes()

    def watch() -> None:
        last = 0.0
        while True:
            if os.getppid() != master:
                os._exit(1)
            try:
                m = os.stat(os.path.join(PREFIX, "conf", "apisix.yaml")).st_mtime
                if m != last:
                    last = m
                    load_routes()
            except Exception as e:
                log("error", f"apisix.yaml: {e}")
            time.sleep(1)
    threading.Thread(target=watch, daemon=True).start()
    # Only set serve_forever's own stop flag here: starting a thread inside a signal
    # handler can deadlock on the threading module's locks.
    signal.signal(signal.SIGQUIT,
                  lambda *a: setattr(srv, "_BaseServer__shutdown_request", True))
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, CAUGHT)
    srv.serve_forever(poll_interval=0.1)
    srv.server_close()
    os._exit(0)


def master(conf: dict, ready: int) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", conf["port"]))
    sock.listen(128)
    sock.setblocking(False)   # workers share it: a lost accept race must not block a worker
    with open(os.path.join(PREFIX, "logs", "gateway.pid"), "w") as f:
        f.write(str(os.getpid()))
    want = conf["workers"]
    workers: set[int] = set()
    queue: list[int] = []
    for s in CAUGHT:
        signal.signal(s, lambda n, f: queue.append(n))

    def spawn() -> None:
        # Signals wait until the child has its own handlers (else an early QUIT is lost).
        signal.pthread_sigmask(signal.SIG_BLOCK, CAUGHT)
        pid = os.fork()
        if pid == 0:
            try:
                worker(sock)
            finally:
                os._exit(1)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, CAUGHT)
        workers.add(pid)

    def reap() -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if os.WIFSIGNALED(_):
                log("alert", f"worker process {pid} exited on signal {os.WTERMSIG(_)}")
            workers.discard(pid)

    for _ in range(want):
        spawn()
    log("notice", f"master started, {want} workers")
    os.write(ready, b"1")
    os.close(ready)
    stopping = False
    while True:
        time.sleep(0.02)
        while queue:
            sig = queue.pop(0)
            if sig == signal.SIGHUP:
                try:
                    want = load_conf()["workers"]
                except Exception as e:
                    log("error", f"reload failed, keeping the old config: {e}")
                    continue
                old = set(workers)
                for _ in range(want):
                    spawn()
                for pid in old:
                    os.kill(pid, signal.SIGQUIT)
                    workers.discard(pid)
            elif sig in (signal.SIGQUIT, signal.SIGTERM, signal.SIGINT):
                stopping = True
                for pid in workers:
                    os.kill(pid, signal.SIGQUIT if sig == signal.SIGQUIT else signal.SIGTERM)
            elif sig == signal.SIGTTIN:
                want += 1
            elif sig == signal.SIGTTOU and want > 0:
                want -= 1
                victim = max(workers)
                os.kill(victim, signal.SIGQUIT)
                workers.discard(victim)
            elif sig == signal.SIGWINCH:
                want = 0
                for pid in workers:
                    os.kill(pid, signal.SIGQUIT)
                workers.clear()
        reap()
        if stopping:
            if not any_children():
                os.unlink(os.path.join(PREFIX, "logs", "gateway.pid"))
                log("notice", "master exited")
                os._exit(0)
            continue
        while len(workers) < want:
            spawn()


def any_children() -> bool:
    try:
        return os.waitpid(-1, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return False


def read_pid() -> int | None:
    try:
        pid = int(open(os.path.join(PREFIX, "logs", "gateway.pid")).read())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def main() -> int:
    global PREFIX
    verb, args = sys.argv[1], sys.argv[2:]
    PREFIX = os.path.abspath(args[args.index("-p") + 1]) if "-p" in args else os.getcwd()
    if verb == "version":
        print("3.0.0-fake")
        return 0
    try:
        conf = load_conf()
    except Exception as e:
        print(f"gateway: {e}", file=sys.stderr)
        return 1
    if verb == "test":
        print("configuration test is successful")
        return 0
    pid = read_pid()
    if verb in ("stop", "quit", "reload"):
        if pid is None:
            print("gateway: not running", file=sys.stderr)
            return 1
        os.kill(pid, {"stop": signal.SIGTERM, "quit": signal.SIGQUIT,
                      "reload": signal.SIGHUP}[verb])
        while verb != "reload" and read_pid() == pid:
            time.sleep(0.02)
        return 0
    if verb != "start" or pid is not None:
        print(f"gateway: cannot {verb}", file=sys.stderr)
        return 1
    r, w = os.pipe()
    if os.fork() == 0:
        os.close(r)
        os.setsid()
        if os.fork() == 0:
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            try:
                master(conf, w)
            except Exception as e:
                log("emerg", f"master failed: {e}")
            os._exit(1)
        os._exit(0)
    os.close(w)
    ok = os.read(r, 1) == b"1"
    if not ok:
        print("gateway: failed to start, see logs/error.log", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
