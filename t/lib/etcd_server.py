"""A throw-away etcd for the test session, on ports of its own.

The gateway's traditional mode keeps its configuration in etcd, and tests must use a real one
(no fake store). A system etcd may already hold 127.0.0.1:2379, and a developer's data must
never be touched, so the harness starts its own: free loopback ports, a temporary data dir,
killed and removed at the end of the session.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

ETCD_CANDIDATES = ("/usr/bin/etcd", "/usr/local/bin/etcd")


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM if pytest dies, so a killed run leaves no etcd."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    """A port the kernel just handed out (bind to 0); free unless someone races us for it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_etcd() -> str:
    found = os.environ.get("GATEWAY_TEST_ETCD_BIN") or shutil.which("etcd")
    for cand in ([found] if found else []) + list(ETCD_CANDIDATES):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise RuntimeError("etcd is not installed (no `etcd` binary on PATH or in /usr/bin): "
                       "run `make test`, which installs it (Debian package etcd-server)")


class EtcdServer:
    def __init__(self, binary: str | None = None):
        self.binary = binary or find_etcd()
        self.proc: subprocess.Popen[bytes] | None = None
        self.data_dir = ""
        self.client_port = 0
        self.url = ""

    def start(self, timeout: float = 20.0) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="gateway-test-etcd-")
        self.client_port, peer_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        cmd = [self.binary, "--name", "gateway-test", "--data-dir", self.data_dir,
               "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
               "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
               "--initial-cluster", f"gateway-test={peer}", "--log-level", "warn"]
        log = open(os.path.join(self.data_dir, "etcd.log"), "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.healthy():
                return
            time.sleep(0.05)
        tail = self.log_tail()
        self.stop()
        raise RuntimeError(f"etcd did not become ready on {self.url}:\n{tail}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                return json.loads(r.read() or b"{}").get("health") in ("true", True)
        except (OSError, ValueError):
            return False

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(os.path.join(self.data_dir, "etcd.log"), "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return "(no etcd log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = ""
