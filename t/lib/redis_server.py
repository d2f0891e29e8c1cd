"""Throw-away Redis servers for the test session: one plain server and a 3-node cluster.

The limit plugins' ``redis`` and ``redis-cluster`` policies are tested against real Redis
(Debian's ``redis-server``, installed by ``make test``). Debian's own service may hold 6379,
and a developer's data must never be touched, so the harness starts its own servers on free
loopback ports with ``--save ""`` (no files written but a temp dir for cluster state), and
kills them when the session ends. The ports reach the tests as environment variables
(``GATEWAY_TEST_REDIS_PORT``, ``GATEWAY_TEST_REDIS_CLUSTER`` = ``host:port,...``), which
``--- admin`` bodies name as ``${{env GATEWAY_TEST_REDIS_PORT}}``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable

from t.lib.etcd_server import die_with_parent, free_port

__all__ = ["LAZY_ENV", "RedisCluster", "RedisServer", "find_redis"]

#: environment variables set on first use: name -> a function that starts what they name
#: and sets them (the cluster takes ~2 s, so sessions that never use it do not pay)
LAZY_ENV: dict[str, Callable[[], None]] = {}


def find_redis() -> str | None:
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/local/bin/redis-server")
         if os.access(p, os.X_OK)), None)


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    for _ in range(100):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a redis cluster node")


class RedisServer:
    """One redis-server on a free port (``cluster``: with cluster mode enabled)."""

    def __init__(self, binary: str, cluster: bool = False):
        self.binary = binary
        self.cluster = cluster
        self.port = 0
        self.dir = ""
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        self.port = _cluster_port() if self.cluster else free_port()
        self.dir = tempfile.mkdtemp(prefix="gateway-test-redis-")
        cmd = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", self.dir,
               "--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log")]
        if self.cluster:
            cmd += ["--cluster-enabled", "yes", "--cluster-config-file",
                    os.path.join(self.dir, "nodes.conf"), "--cluster-node-timeout", "2000"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if _ping(self.port):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("redis-server did not start on port %d" % self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = ""


class RedisCluster:
    """Three cluster-mode servers joined by ``redis-cli --cluster create`` (no replicas)."""

    def __init__(self, binary: str, size: int = 3):
        self.nodes = [RedisServer(binary, cluster=True) for _ in range(size)]

    @property
    def addresses(self) -> list[str]:
        return ["127.0.0.1:%d" % n.port for n in self.nodes]

    def start(self, timeout: float = 20.0) -> None:
        try:
            for node in self.nodes:
                node.start()
            cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
            subprocess.run([cli, "--cluster", "create", *self.addresses,
                            "--cluster-replicas", "0", "--cluster-yes"],
                           check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=timeout)
            # every node, not only the first, must see the whole cluster before a test
            # uses it: a node still learning the others (gossip) answers CLUSTERDOWN, and
            # the gateway's client (one try per call, as APISIX's) fails the request
            want = (b"cluster_state:ok", b"cluster_slots_ok:16384",
                    b"cluster_known_nodes:%d" % len(self.nodes))
            deadline = time.monotonic() + timeout
            waiting = [n.port for n in self.nodes]
            while time.monotonic() < deadline:
                out = subprocess.run([cli, "-p", str(waiting[0]), "cluster", "info"],
                                     check=False, capture_output=True, timeout=5).stdout
                if all(line in out for line in want):
                    waiting.pop(0)
                    if not waiting:
                        return
                    continue
                time.sleep(0.05)
            raise RuntimeError("the redis cluster did not reach cluster_state:ok on "
                               "every node")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
