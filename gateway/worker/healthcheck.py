"""Upstream health checks: per-node health state, active probes, passive reports.

APISIX runs lua-resty-healthcheck for an upstream with ``checks``; this module keeps its
observable behaviour (thresholds, defaults of spec §2.2, the four statuses, the counters and
the warn lines ``unhealthy TCP increment (1/2) for '127.0.0.1(127.0.0.1:1970)'``).

* :class:`Health` is one upstream's state. The balancer reads only ``Health.bad`` (the names
  of the nodes that count as unhealthy, mutated in place), so an upstream without checks
  has ``health = None`` and costs one test per pick; an upstream with checks but every node
  healthy costs one more (an empty set).
* Counters follow lua-resty-healthcheck: a success clears the failure counters, a failure
  clears the success counter; reaching a threshold (``healthy.successes``,
  ``unhealthy.http_failures`` / ``tcp_failures`` / ``timeouts``) flips the status; a
  healthy node with some failures is ``mostly_healthy`` (still picked), an unhealthy one with
  some successes ``mostly_unhealthy`` (still skipped). A report that agrees with the
  current status is not counted; a threshold of 0 disables that counter.
* Active checks (``checks.active``: http, https or tcp) run in a gevent greenlet per
  upstream in one worker of the node, the leader (:class:`Sharing`); status changes reach
  the other workers through the master. Ordinary blocking-style gevent code, off the data
  path. Healthy
  nodes are probed every ``healthy.interval`` s, unhealthy ones every ``unhealthy.interval``
  s (0: not probed; the first probe comes one interval after the checker starts), at most
  ``concurrency`` probes at a time.
* Passive reports come from the data path (gateway.worker.upstream): a failed try that is
  retried counts as a TCP failure (a timeout as a timeout), and the final status of each
  proxied response is matched against ``checks.passive`` statuses, as APISIX does.
* :class:`Registry` keeps each upstream's Health across table rebuilds as long as its
  ``checks`` and nodes are unchanged (``Health.signature``), starts the checkers of a table
  that was swapped in and stops those no longer used. :func:`status` returns the state in
  the Control API's ``GET /v1/healthcheck`` shape.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from typing import Any

import gevent
import gevent.pool
import gevent.socket
import gevent.ssl

from gateway.core.log import log

__all__ = ["Health", "Registry", "REGISTRY", "SHARING", "status", "status_of", "HEALTHY", "UNHEALTHY",
           "MOSTLY_HEALTHY", "MOSTLY_UNHEALTHY"]

HEALTHY, UNHEALTHY = "healthy", "unhealthy"
MOSTLY_HEALTHY, MOSTLY_UNHEALTHY = "mostly_healthy", "mostly_unhealthy"
#: statuses whose node the balancer skips
_SKIPPED = frozenset((UNHEALTHY, MOSTLY_UNHEALTHY))
#: counters, by the name lua-resty-healthcheck logs them with
SUCCESS, HTTP, TCP, TIMEOUT = "SUCCESS", "HTTP", "TCP", "TIMEOUT"
_COUNTER_FIELD = {SUCCESS: "success", HTTP: "http_failure", TCP: "tcp_failure",
                  TIMEOUT: "timeout_failure"}
#: lua-resty-healthcheck packs each counter in 8 bits
_COUNTER_MAX = 255
#: a probe reads at most this much of the response before it has the status line
_STATUS_LINE_MAX = 4096

ACTIVE_DEFAULTS: dict[str, Any] = {
    "type": "http", "timeout": 1, "concurrency": 10, "http_path": "/", "http_method": "GET",
    "http_req_body": "", "https_verify_certificate": True, "req_headers": [],
    "healthy": {"interval": 1, "http_statuses": [200, 302], "successes": 2},
    "unhealthy": {"interval": 1, "http_statuses": [429, 404, 500, 501, 502, 503, 504, 505],
                  "http_failures": 5, "tcp_failures": 2, "timeouts": 3},
}
PASSIVE_DEFAULTS: dict[str, Any] = {
    "type": "http",
    "healthy": {"http_statuses": [*range(200, 209), 226, *range(300, 309)], "successes": 5},
    "unhealthy": {"http_statuses": [429, 500, 503], "http_failures": 5, "tcp_failures": 2,
                  "timeouts": 7},
}


class _Checks:
    """One side (active or passive) of ``checks``, defaults applied."""

    __slots__ = ("type", "healthy_statuses", "successes", "healthy_interval",
                 "unhealthy_statuses", "http_failures", "tcp_failures", "timeouts",
                 "unhealthy_interval", "timeout", "concurrency", "http_path", "http_method",
                 "http_req_body", "verify", "host", "port", "req_headers")

    def __init__(self, conf: Mapping[str, Any], defaults: Mapping[str, Any]):
        def get(*path: str) -> Any:
            cur: Any = conf
            dflt: Any = defaults
            for key in path:
                cur = cur.get(key) if isinstance(cur, Mapping) else None
                dflt = dflt.get(key) if isinstance(dflt, Mapping) else None
            return dflt if cur is None else cur

        self.type = str(get("type") or "http")
        self.healthy_statuses = frozenset(int(s) for s in get("healthy", "http_statuses") or ())
        self.successes = int(get("healthy", "successes") or 0)
        self.healthy_interval = float(get("healthy", "interval") or 0)
        self.unhealthy_statuses = frozenset(
            int(s) for s in get("unhealthy", "http_statuses") or ())
        self.http_failures = int(get("unhealthy", "http_failures") or 0)
        self.tcp_failures = int(get("unhealthy", "tcp_failures") or 0)
        self.timeouts = int(get("unhealthy", "timeouts") or 0)
        self.unhealthy_interval = float(get("unhealthy", "interval") or 0)
        self.timeout = float(get("timeout") or 1)
        self.concurrency = max(1, int(get("concurrency") or 1))
        self.http_path = str(get("http_path") or "/")
        self.http_method = str(get("http_method") or "GET")
        self.http_req_body = str(get("http_req_body") or "")
        self.verify = bool(get("https_verify_certificate"))
        self.host = conf.get("host") if isinstance(conf.get("host"), str) else None
        port = conf.get("port")
        self.port = int(port) if isinstance(port, int) and not isinstance(port, bool) else None
        self.req_headers = [str(h) for h in get("req_headers") or ()]


class _Target:
    """One node as the checker sees it: where to probe, its status and counters."""

    __slots__ = ("name", "ip", "port", "family", "hostname", "status", "success",
                 "http_failure", "tcp_failure", "timeout_failure", "due")

    def __init__(self, node: Any, active: _Checks | None):
        self.name = node.name
        self.family = node.family
        self.ip = str(node.addr[0])
        self.port = active.port if active is not None and active.port else node.port
        self.hostname = active.host if active is not None and active.host else self.ip
        self.status = HEALTHY   # APISIX adds targets as healthy
        self.success = self.http_failure = self.tcp_failure = self.timeout_failure = 0
        self.due = 0.0

    def info(self) -> dict[str, Any]:
        return {"ip": self.ip, "port": self.port, "hostname": self.hostname,
                "status": self.status,
                "counter": {"success": self.success, "http_failure": self.http_failure,
                            "tcp_failure": self.tcp_failure,
                            "timeout_failure": self.timeout_failure}}


class Health:
    """One upstream's health state and (when ``checks.active`` is set) its checker."""

    __slots__ = ("name", "key", "signature", "kind", "active", "passive", "targets", "bad",
                 "greenlet")

    def __init__(self, name: str, checks: Mapping[str, Any], nodes: list[Any],
                 signature: str):
        #: the resource key (``/apisix/upstreams/1``, ``/apisix/routes/1`` for an inline one)
        self.name = name
        self.key = "upstream#" + name   # how lua-resty-healthcheck's lines name the checker
        self.signature = signature
        active = checks.get("active")
        passive = checks.get("passive")
        self.active = _Checks(active, ACTIVE_DEFAULTS) if isinstance(active, Mapping) else None
        self.passive = _Checks(passive, PASSIVE_DEFAULTS) \
            if isinstance(passive, Mapping) else None
        self.kind = (self.active or self.passive or _Checks({}, ACTIVE_DEFAULTS)).type
        #: node name → target
        self.targets: dict[bytes, _Target] = {n.name: _Target(n, self.active) for n in nodes}
        #: names of the nodes the balancer must skip (mutated in place)
        self.bad: set[bytes] = set()
        self.greenlet: gevent.Greenlet | None = None

    # ------------------------------------------------------------------ reports
    def report_http_status(self, node_name: bytes, code: int, active: bool = False) -> None:
        """A response status (0: no valid response); ignored when in neither list."""
        checks = self.active if active else self.passive
        target = self.targets.get(node_name)
        if checks is None or target is None:
            return
        if code in checks.healthy_statuses:
            self._count(target, HEALTHY, SUCCESS, checks.successes)
        elif code in checks.unhealthy_statuses or code == 0:
            self._count(target, UNHEALTHY, HTTP, checks.http_failures)

    def report_success(self, node_name: bytes, active: bool = False) -> None:
        checks = self.active if active else self.passive
        target = self.targets.get(node_name)
        if checks is not None and target is not None:
            self._count(target, HEALTHY, SUCCESS, checks.successes)

    def report_tcp_failure(self, node_name: bytes, active: bool = False) -> None:
        checks = self.active if active else self.passive
        target = self.targets.get(node_name)
        if checks is not None and target is not None:
            self._count(target, UNHEALTHY, TCP, checks.tcp_failures)

    def report_timeout(self, node_name: bytes, active: bool = False) -> None:
        checks = self.active if active else self.passive
        target = self.targets.get(node_name)
        if checks is not None and target is not None:
            self._count(target, UNHEALTHY, TIMEOUT, checks.timeouts)

    def _count(self, target: _Target, report: str, counter: str, limit: int) -> None:
        """lua-resty-healthcheck's ``incr_counter``."""
        if limit == 0 or report == target.status:
            return
        field = _COUNTER_FIELD[counter]
        value = min(getattr(target, field) + 1, _COUNTER_MAX)
        setattr(target, field, value)
        if counter == SUCCESS:
            target.http_failure = target.tcp_failure = target.timeout_failure = 0
        else:
            target.success = 0
        log.warning("(%s) %s %s increment (%d/%d) for '%s(%s:%d)'", self.key, report,
                    counter, value, limit, target.hostname, target.ip, target.port)
        current = target.status
        new = current
        if value >= limit:
            new = report
        elif current == HEALTHY and (target.http_failure or target.tcp_failure
                                     or target.timeout_failure):
            new = MOSTLY_HEALTHY
        elif current == UNHEALTHY and target.success:
            new = MOSTLY_UNHEALTHY
        if new != current:
            self._set_status(target, new)
            SHARING.changed(self.name, target.name, new)

    def _set_status(self, target: _Target, new: str) -> None:
        if new != target.status:
            target.status = new
            if new in _SKIPPED:
                if target.name not in self.bad:
                    self.bad.add(target.name)
                    log.warning("(%s) %s:%d is unhealthy", self.key, target.ip, target.port)
            elif target.name in self.bad:
                self.bad.discard(target.name)
                log.warning("(%s) %s:%d is healthy again", self.key, target.ip, target.port)

    # ------------------------------------------------------------------ active checks
    def start(self) -> None:
        """Start probing (idempotent; nothing to do without ``checks.active``, and only the
        node's leader worker probes: the others learn the results from it)."""
        if self.active is None or self.greenlet is not None or not self.targets \
                or not SHARING.leader:
            return
        now = time.monotonic()
        for target in self.targets.values():  # first probes one interval from now
            interval = self._interval(target)
            target.due = now + interval if interval > 0 else float("inf")
        self.greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        greenlet = self.greenlet
        self.greenlet = None
        if greenlet is not None:
            greenlet.kill(block=False)

    def _interval(self, target: _Target) -> float:
        active = self.active
        return active.unhealthy_interval if target.status in _SKIPPED \
            else active.healthy_interval

    def _run(self) -> None:
        pool = gevent.pool.Pool(self.active.concurrency)
        targets = list(self.targets.values())
        while True:
            try:
                now = time.monotonic()
                due = [t for t in targets if t.due <= now]
                if due:
                    for target in due:
                        pool.spawn(self._probe, target)
                    pool.join()
                    now = time.monotonic()
                    for target in due:
                        interval = self._interval(target)
                        target.due = now + interval if interval > 0 else float("inf")
                nxt = min(t.due for t in targets)
                if nxt == float("inf"):
                    # nothing to probe in any state: look again now and then (a node that
                    # passive reports turn unhealthy gets its unhealthy interval back)
                    for t in targets:
                        interval = self._interval(t)
                        t.due = now + interval if interval > 0 else float("inf")
                    gevent.sleep(1.0)
                    continue
                gevent.sleep(max(0.0, nxt - time.monotonic()))
            except gevent.GreenletExit:
                raise
            except Exception:  # noqa: BLE001 - a checker must not die on a surprise
                log.exception("(%s) health checker failed; retrying", self.key)
                gevent.sleep(1.0)

    def _probe(self, target: _Target) -> None:
        """One active check of ``target``; reports its outcome."""
        active = self.active
        sock = gevent.socket.socket(target.family, socket.SOCK_STREAM)
        sock.settimeout(active.timeout)
        try:
            try:
                sock.connect((target.ip, target.port))
            except TimeoutError:
                self.report_timeout(target.name, True)
                return
            except OSError:
                self.report_tcp_failure(target.name, True)
                return
            if active.type == "tcp":
                self.report_success(target.name, True)
                return
            try:
                if active.type == "https":
                    ctx = gevent.ssl.create_default_context()
                    if not active.verify:
                        ctx.check_hostname = False
                        ctx.verify_mode = ssl.CERT_NONE
                    sock = ctx.wrap_socket(sock, server_hostname=active.host or None)
                sock.sendall(self._request(target))
                code = _read_status(sock)
            except TimeoutError:
                self.report_timeout(target.name, True)
                return
            except (OSError, ValueError):
                self.report_tcp_failure(target.name, True)
                return
            self.report_http_status(target.name, code, True)
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def _request(self, target: _Target) -> bytes:
        active = self.active
        lines = ["%s %s HTTP/1.0" % (active.http_method, active.http_path),
                 "Host: %s" % target.hostname]
        lines += active.req_headers
        body = active.http_req_body
        if body:
            lines.append("Content-Length: %d" % len(body.encode()))
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    # ------------------------------------------------------------------ reading
    def info(self) -> dict[str, Any]:
        """This checker in the Control API's shape."""
        return {"name": self.name, "type": self.kind,
                "nodes": [t.info() for t in self.targets.values()]}


def _read_status(sock: Any) -> int:
    """The status code of the response's status line (0 when it is not one)."""
    data = b""
    while b"\n" not in data:
        piece = sock.recv(1024)
        if not piece:
            break
        data += piece
        if len(data) > _STATUS_LINE_MAX:
            break
    line = data.split(b"\n", 1)[0].split()
    if len(line) >= 2 and line[0].startswith(b"HTTP/") and line[1].isdigit():
        return int(line[1])
    return 0


def _signature(checks: Mapping[str, Any], nodes: list[Any]) -> str:
    return json.dumps([checks, [(n.name.decode("latin-1"), list(n.addr)) for n in nodes]],
                      sort_keys=True, default=str)


class Registry:
    """Every upstream's Health in this worker, by resource key."""

    __slots__ = ("current",)

    def __init__(self) -> None:
        #: resource key → the Health of the table in service
        self.current: dict[str, Health] = {}

    def health(self, name: str, checks: Any, nodes: list[Any]) -> Health | None:
        """The Health for an upstream being built: the running one when its checks and
        nodes did not change, else a new one (started by :meth:`activate`)."""
        if not isinstance(checks, Mapping) or not nodes:
            return None
        signature = _signature(checks, nodes)
        running = self.current.get(name)
        if running is not None and running.signature == signature:
            return running
        return Health(name, checks, nodes, signature)

    def activate(self, healths: Iterable[Health]) -> None:
        """The table holding ``healths`` is in service: start them, stop the rest."""
        new: dict[str, Health] = {}
        for h in healths:
            new[h.name] = h
        for name, old in self.current.items():
            if new.get(name) is not old:
                old.stop()
        for h in new.values():
            h.start()
        self.current = new

    def stop(self) -> None:
        self.activate(())

    def start_all(self) -> None:
        """This worker just became the leader: start every active checker."""
        for health in self.current.values():
            health.start()

    def states(self) -> list[list[Any]]:
        """[upstream, node, status] of every node not healthy (what the leader shares)."""
        return [[name, target.name, target.status]
                for name, health in self.current.items()
                for target in health.targets.values() if target.status != HEALTHY]

    def apply(self, states: list[list[Any]], complete: bool) -> None:
        """Statuses shared by another worker. `complete`: the whole picture (nodes it does
        not list are healthy); else only the listed transitions."""
        listed: dict[tuple[str, bytes], str] = {(n, t): st for n, t, st in states}
        for name, health in self.current.items():
            for target in health.targets.values():
                status = listed.get((name, target.name))
                if status is None:
                    if not complete:
                        continue
                    status = HEALTHY
                health._set_status(target, status)

    def status(self) -> list[dict[str, Any]]:
        return [self.current[name].info() for name in sorted(self.current)]

    def status_of(self, kind: str, ident: str) -> dict[str, Any] | None:
        """One checker by ``routes|services|upstreams`` and id (None: not found)."""
        health = self.current.get("/apisix/%s/%s" % (kind, ident))
        return health.info() if health is not None else None


class Sharing:
    """Health results are per node, not per worker (nginx shares them in a shared dict):

    * one worker, the holder of an flock on ``logs/healthcheck.lock``, runs the active
      checkers; when it dies the lock is free and another worker takes over on its next tick;
    * every status change, active or passive, in any worker is sent through the master to
      all workers (``send`` is the worker's relay);
    * the leader also sends the complete picture each second, so a worker that starts late
      (reload, respawn) converges within a second.
    """

    def __init__(self) -> None:
        self.leader = True            # a lone process (unit tests) probes itself
        self.send: Any = None         # callable(message dict) set by the worker
        self._lock_fd: int | None = None

    def setup(self, lock_path: str, send: Any) -> None:
        self.send = send
        self.leader = False
        self._lock_path = lock_path
        self.try_lead()

    def try_lead(self) -> bool:
        """Become the leader if nobody is (non-blocking); True when this worker leads."""
        if self.leader:
            return True
        import fcntl
        import os
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd, self.leader = fd, True
        REGISTRY.start_all()
        return True

    def changed(self, upstream: str, node: bytes, status: str) -> None:
        if self.send is not None:
            self.send({"states": [[upstream, node, status]], "complete": False})

    def tick(self) -> None:
        """Each second: try to lead; as the leader, share the whole picture."""
        if self.send is None:
            return
        if self.try_lead() and REGISTRY.current:
            self.send({"states": REGISTRY.states(), "complete": True})

    def received(self, message: dict) -> None:
        REGISTRY.apply(message.get("states") or [], bool(message.get("complete")))


#: this worker's registry (each worker process has its own after the fork)
REGISTRY = Registry()
SHARING = Sharing()


def activate_table(table: Any, registry: Registry = REGISTRY) -> None:
    """Start the checkers of ``table`` (just swapped in), stop the others."""
    healths: dict[int, Health] = {}
    for up in getattr(table, "upstreams", {}).values():
        if up.health is not None:
            healths[id(up.health)] = up.health
    for route in getattr(table, "routes", ()):
        target = getattr(route, "data", None)
        up = getattr(target, "upstream", None)
        if up is not None and up.health is not None:
            healths[id(up.health)] = up.health
    registry.activate(healths.values())


def status() -> list[dict[str, Any]]:
    """``GET /v1/healthcheck``: every checker of this worker."""
    return REGISTRY.status()


def status_of(kind: str, ident: str) -> dict[str, Any] | None:
    """``GET /v1/healthcheck/{routes|services|upstreams}/{id}``."""
    return REGISTRY.status_of(kind, ident)
