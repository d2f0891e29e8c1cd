"""Start, stop and inspect the gateway under test, from the outside.

The harness drives the product only through its CLI (`bin/gateway start|stop -p PREFIX`), its
pid file and the process table, exactly as an operator would. Process facts come from
`/proc` (who is a child of the master, who is a zombie), because signal tests must observe
effects (new workers, old ones gone) rather than sleep and hope.

Every master and worker pid the harness sees is remembered with its start time, so teardown
can make sure none outlives the run even if `stop` fails, without ever touching a process the
harness did not start (a pid reused by someone else has another start time).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PID_FILE = "logs/gateway.pid"
ERROR_LOG = "logs/error.log"
#: resolved once, against the directory pytest was started from (cwd changes per command)
_OVERRIDE = os.path.abspath(os.environ["GATEWAY_TEST_BIN"]) if os.environ.get(
    "GATEWAY_TEST_BIN") else None


def gateway_command() -> list[str]:
    """How to run the CLI: `GATEWAY_TEST_BIN` overrides the repo's `bin/gateway`.

    A script whose shebang is `/usr/bin/env python...` runs under this interpreter (the
    venv), since `env` might find a system Python without the gateway's dependencies."""
    path = _OVERRIDE or str(REPO / "bin" / "gateway")
    try:
        with open(path, "rb") as f:
            first = f.readline()
    except OSError:
        return [path]
    if path.endswith(".py") or not os.access(path, os.X_OK) or (
            first.startswith(b"#!") and b"python" in first and b"/usr/bin/env" in first):
        return [sys.executable, path]
    return [path]


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    state: str
    starttime: int

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")


def proc_info(pid: int) -> ProcInfo | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("latin-1")
    except (OSError, ValueError):
        return None
    fields = data[data.rfind(")") + 2:].split()   # the command name may hold spaces/parens
    return ProcInfo(pid, int(fields[1]), fields[0], int(fields[19]))


def alive(pid: int) -> bool:
    info = proc_info(pid)
    return info is not None and not info.zombie


def all_procs() -> list[ProcInfo]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = proc_info(int(name))
            if info is not None:
                out.append(info)
    return out


def children(pid: int) -> list[int]:
    """Live (non-zombie) children of `pid`, sorted."""
    return sorted(p.pid for p in all_procs() if p.ppid == pid and not p.zombie)


def descendants(pid: int) -> list[int]:
    procs = all_procs()
    out: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p.pid for p in procs if p.ppid == parent and not p.zombie]
        out += kids
        frontier += kids
    return out


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def wait_until(pred, timeout: float, interval: float = 0.02) -> bool:
    """Poll `pred` until true or the deadline passes; the harness's only way of waiting."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class Gateway:
    """One gateway installation prefix (conf/, logs/) and the processes started from it."""

    def __init__(self, prefix: str | Path, env: dict[str, str] | None = None):
        self.prefix = Path(prefix)
        self.env = dict(os.environ if env is None else env)
        #: the conf/config.yaml text the running gateway was started with (None: not ours)
        self.started_config: str | None = None
        self._seen: set[tuple[int, int]] = set()

    @property
    def pid_path(self) -> Path:
        return self.prefix / PID_FILE

    @property
    def error_log(self) -> Path:
        return self.prefix / ERROR_LOG

    def cli(self, verb: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Run `gateway VERB -p PREFIX ARGS`; output captured; a hang becomes exit 124."""
        cmd = gateway_command() + [verb, "-p", str(self.prefix), *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  env=self.env, cwd=str(self.prefix), stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
            return subprocess.CompletedProcess(cmd, 124, out, err + f"\n(timed out after "
                                                                   f"{timeout:g}s)")
        except OSError as e:
            return subprocess.CompletedProcess(cmd, 127, "", f"cannot run {cmd[0]}: {e}")

    # -- state ----------------------------------------------------------------------------
    def master_pid(self) -> int | None:
        """The pid in logs/gateway.pid if that process is alive."""
        pid = read_pid(self.pid_path)
        return pid if pid is not None and alive(pid) else None

    def running(self) -> bool:
        return self.master_pid() is not None

    def workers(self, master: int | None = None) -> list[int]:
        master = master or self.master_pid()
        if master is None:
            return []
        kids = children(master)
        self.remember(master, *kids)
        return kids

    def remember(self, *pids: int) -> None:
        for pid in pids:
            info = proc_info(pid)
            if info is not None:
                self._seen.add((pid, info.starttime))

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, config_text: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        res = self.cli("start", timeout=timeout)
        if res.returncode == 0:
            self.started_config = config_text
            self.workers()
        else:
            self.started_config = None
            self.kill_leftovers()
        return res

    def stop(self, timeout: float = 60.0) -> str | None:
        """Stop the gateway; returns a complaint if it needed force, else None."""
        problem = None
        stopped: set[int] = set()
        # After USR2 the old master may take the pid file back when the new one exits.
        while (master := self.master_pid()) is not None and master not in stopped:
            stopped.add(master)
            self.workers(master)
            self.remember(*descendants(master))
            res = self.cli("stop", timeout=timeout)
            if res.returncode != 0 or not wait_until(lambda: not alive(master), 5):
                problem = (f"`gateway stop` exited {res.returncode}: "
                           f"{(res.stderr or res.stdout).strip()[-500:]}")
        old = read_pid(self.prefix / (PID_FILE + ".oldbin"))
        if old is not None and alive(old):
            self.remember(old, *descendants(old))
            os.kill(old, signal.SIGTERM)
            wait_until(lambda: not alive(old), 10)
        self.started_config = None
        leftovers = self.kill_leftovers()
        if leftovers and problem is None:
            problem = f"processes left after stop were killed: {leftovers}"
        return problem

    def kill_leftovers(self, grace: float = 5.0) -> list[int]:
        """SIGTERM, then SIGKILL, every remembered process that still runs (same start time)."""
        def ours() -> list[int]:
            out = []
            for pid, start in self._seen:
                info = proc_info(pid)
                if info is not None and info.starttime == start and not info.zombie:
                    out.append(pid)
            return sorted(out)

        left = ours()
        for pid in left:
            _signal(pid, signal.SIGTERM)
        if left and not wait_until(lambda: not ours(), grace):
            for pid in ours():
                _signal(pid, signal.SIGKILL)
            wait_until(lambda: not ours(), grace)
        still = set(ours())
        self._seen = {(p, s) for p, s in self._seen if p in still}
        return left

    def log_tail(self, lines: int = 30) -> str:
        try:
            data = self.error_log.read_bytes()
        except OSError:
            return "(no logs/error.log)"
        return b"\n".join(data.splitlines()[-lines:]).decode("utf-8", "replace")


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
