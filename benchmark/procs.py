"""Processes the benchmark starts, and what /proc says about them.

Every process is remembered with its start time, so teardown signals only processes that are
ours (a pid reused by someone else has another start time) and leaves none behind.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------ /proc
def proc_stat(pid: int) -> list[str] | None:
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("latin-1")
    except OSError:
        return None
    return data[data.rfind(")") + 2:].split()     # fields from 3 (state) on


def start_time(pid: int) -> int | None:
    st = proc_stat(pid)
    return int(st[19]) if st and st[0] not in ("Z", "X") else None


def cpu_ticks(pids: list[int]) -> tuple[int, int]:
    """utime, stime (clock ticks) summed over `pids` (all threads of each)."""
    user = system = 0
    for pid in pids:
        st = proc_stat(pid)
        if st:
            user += int(st[11])
            system += int(st[12])
    return user, system


def rss_mb(pid: int) -> float | None:
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def children(pid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st and int(st[1]) == pid and st[0] not in ("Z", "X"):
                out.append(int(name))
    return sorted(out)


# ------------------------------------------------------------------------------ processes
class Target:
    """A proxy (or the backend) under our control: its pids, remembered with start times so
    that teardown never signals a process that is not ours."""

    name = ""

    def __init__(self) -> None:
        self.seen: dict[int, int] = {}

    def remember(self, *pids: int) -> None:
        for pid in pids:
            st = start_time(pid)
            if st is not None:
                self.seen[pid] = st

    def master(self) -> int | None:
        raise NotImplementedError

    def pids(self) -> list[int]:
        """Master + workers: the processes whose CPU time is the proxy's cost."""
        m = self.master()
        if m is None:
            return []
        kids = children(m)
        self.remember(m, *kids)
        return [m] + kids

    def workers(self) -> list[int]:
        return self.pids()[1:]

    def ours_alive(self) -> list[int]:
        return [p for p, st in self.seen.items() if start_time(p) == st]

    def kill_leftovers(self, grace: float = 5.0) -> list[int]:
        left = self.ours_alive()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.ours_alive():
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            deadline = time.monotonic() + grace
            while self.ours_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not self.ours_alive():
                break
        return left


class Nginx(Target):
    """nginx in the foreground (daemon off) from a prefix of our own."""

    def __init__(self, name: str, prefix: Path, conf: str, cpu: int):
        super().__init__()
        self.name, self.prefix, self.cpu = name, prefix, cpu
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "logs").mkdir(exist_ok=True)
        self.conf_path = prefix / "nginx.conf"
        self.conf_path.write_text(conf)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.log = open(self.prefix / "logs" / "stderr.log", "wb")
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(self.cpu), binary, "-p", str(self.prefix) + "/",
             "-c", str(self.conf_path), "-e", str(self.prefix / "logs" / "error.log")],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        # taskset execs nginx: same pid
        self.remember(self.proc.pid)
        if not wait_until(lambda: len(self.workers()) >= 1 or self.proc.poll() is not None, 10):
            raise RuntimeError("%s did not start its worker" % self.name)
        if self.proc.poll() is not None:
            raise RuntimeError("%s exited: %s" % (self.name, (self.prefix / "logs" /
                                                               "stderr.log").read_text()[-500:]))

    def master(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.pids()
            self.proc.send_signal(signal.SIGTERM)        # nginx: fast shutdown
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.kill_leftovers()
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass


class Gateway(Target):
    """The gateway from a prefix of our own, via its CLI as an operator runs it."""

    def __init__(self, name: str, prefix: Path, config: dict, apisix_yaml: str, cpu: int):
        super().__init__()
        self.name, self.prefix, self.cpu = name, prefix, cpu
        (prefix / "conf").mkdir(parents=True, exist_ok=True)
        (prefix / "logs").mkdir(exist_ok=True)
        # JSON is YAML: no YAML library needed to write the configs
        (prefix / "conf" / "config.yaml").write_text(json.dumps(config, indent=1) + "\n")
        (prefix / "conf" / "apisix.yaml").write_text(apisix_yaml)
        self.start_s: float | None = None

    def cli(self, verb: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = ["taskset", "-c", str(self.cpu), str(REPO / "bin" / "gateway"), verb,
               "-p", str(self.prefix)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, cwd=str(self.prefix))

    def start(self) -> None:
        t0 = time.monotonic()
        res = self.cli("start")
        self.start_s = time.monotonic() - t0
        self.pids()
        if res.returncode != 0:
            self.kill_leftovers()
            raise RuntimeError("%s: gateway start exited %d: %s" % (
                self.name, res.returncode, (res.stderr or res.stdout).strip()[-800:]))

    def master(self) -> int | None:
        try:
            pid = int((self.prefix / "logs" / "gateway.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if start_time(pid) is not None else None

    def stop(self) -> None:
        if self.master() is not None:
            self.pids()
            try:
                self.cli("stop", timeout=30)
            except subprocess.TimeoutExpired:
                pass
            wait_until(lambda: not self.ours_alive(), 10)
        self.kill_leftovers()


def wait_until(pred, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM if the benchmark dies (etcd is not a daemon)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Etcd(Target):
    """A throw-away etcd (Debian's etcd-server) on ports of ours with a temp data dir."""

    def __init__(self, name: str, prefix: Path, client_port: int, peer_port: int, cpu: int):
        super().__init__()
        self.name, self.prefix, self.cpu = name, prefix, cpu
        self.url = "http://127.0.0.1:%d" % client_port
        self.peer = "http://127.0.0.1:%d" % peer_port
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("etcd") or "/usr/bin/etcd"
        self.prefix.mkdir(parents=True, exist_ok=True)
        cmd = ["taskset", "-c", str(self.cpu), binary, "--name", "bench",
               "--data-dir", str(self.prefix / "data"),
               "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
               "--listen-peer-urls", self.peer, "--initial-advertise-peer-urls", self.peer,
               "--initial-cluster", "bench=" + self.peer, "--log-level", "warn"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        with open(self.prefix / "etcd.log", "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        self.remember(self.proc.pid)
        if not wait_until(lambda: self.healthy() or self.proc.poll() is not None, 20) or \
                self.proc.poll() is not None:
            raise RuntimeError("etcd did not become ready on %s: %s" % (
                self.url, (self.prefix / "etcd.log").read_text()[-500:]))

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                return json.loads(r.read() or b"{}").get("health") in ("true", True)
        except (OSError, ValueError):
            return False

    def master(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.kill_leftovers()
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
