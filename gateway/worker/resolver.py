"""Domain-name upstream nodes: resolved off the event loop, cached, re-resolved in the background.

APISIX resolves a node's host name when it builds the upstream and caches the answer for the
record's TTL, or ``apisix.dns_resolver_valid`` seconds when set. getaddrinfo (which honours
/etc/hosts and resolv.conf like nginx's resolver does not, but like users expect) does not
report TTLs, so we cache for ``dns_resolver_valid`` or :data:`DEFAULT_VALID` seconds.

* A table build asks :meth:`DnsCache.lookup` for each name. A cached answer is returned at
  once, even when it is stale (the refresher is on it). A name never seen is resolved there,
  through gevent's resolver (a thread pool: the build's greenlet waits, the loop does not),
  bounded by ``apisix.resolver_timeout``.
* :meth:`DnsCache.start` runs one refresher greenlet per worker: it sleeps until the first
  answer expires, re-resolves the expired names the last build used (names that failed are
  tried again too), and calls ``on_change`` when an address appeared, changed or vanished,
  so the worker rebuilds its table. A failed re-resolution keeps the previous address (a
  DNS outage does not take nodes away) and is logged.
* A name that does not resolve makes its node skipped (error-log line); an upstream left
  without nodes answers 503, as APISIX does.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

import gevent
import gevent.socket

from gateway.core.log import every, log

__all__ = ["DnsCache", "DNS", "DEFAULT_VALID"]

#: seconds an answer is used when ``apisix.dns_resolver_valid`` is not set
DEFAULT_VALID = 30.0
#: seconds a name lookup may take (``apisix.resolver_timeout`` overrides it)
DEFAULT_TIMEOUT = 5.0

class _Entry:
    __slots__ = ("answer", "expires")

    def __init__(self, answer: Any, expires: float):
        self.answer = answer
        self.expires = expires


class DnsCache:
    """Name → first address (IPv4 preferred), cached for ``valid`` seconds."""

    __slots__ = ("valid", "timeout", "entries", "used", "on_change", "greenlet", "clock")

    def __init__(self, valid: float = DEFAULT_VALID, timeout: float = DEFAULT_TIMEOUT):
        self.valid = valid
        self.timeout = timeout
        self.entries: dict[str, _Entry] = {}
        #: the names the last table build asked for (others are dropped by :meth:`retain`)
        self.used: set[str] = set()
        self.on_change: Callable[[], None] | None = None
        self.greenlet: gevent.Greenlet | None = None
        self.clock: Callable[[], float] = time.monotonic

    def configure(self, valid: Any, timeout: Any) -> None:
        """``apisix.dns_resolver_valid`` (None: :data:`DEFAULT_VALID`), ``resolver_timeout``."""
        self.valid = float(valid) if valid is not None else DEFAULT_VALID
        self.timeout = float(timeout) if timeout else DEFAULT_TIMEOUT

    def lookup(self, name: str) -> tuple[str, int] | None:
        """The cached answer for ``name`` (stale ones too), else resolve it now."""
        entry = self.entries.get(name)
        if entry is None:
            answer, error = self._resolve(name)
            if answer is None:
                log.error("dns resolver domain: %s error: %s", name, error)  # APISIX's line
            entry = self.entries[name] = _Entry(answer, self.clock() + self.valid)
        self.used.add(name)
        return entry.answer

    def retain(self, names: Iterable[str]) -> None:
        """A build finished using ``names``: forget the rest."""
        keep = set(names)
        for name in [n for n in self.entries if n not in keep]:
            del self.entries[name]
        self.used = keep

    def _resolve(self, name: str) -> tuple[tuple[str, int] | None, str]:
        """(first address, "") or (None, why)."""
        try:
            if gevent.getcurrent() is gevent.get_hub():
                infos = socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)  # no switching
            else:
                with gevent.Timeout(self.timeout, socket.gaierror(-3, "timed out")):
                    infos = gevent.socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)
        except (OSError, UnicodeError) as e:
            return None, str(e)
        infos = [i for i in infos if i[0] in (socket.AF_INET, socket.AF_INET6)]
        infos.sort(key=lambda i: i[0] != socket.AF_INET)  # prefer IPv4, as nginx's order
        return ((infos[0][4][0], infos[0][0]), "") if infos else (None, "no address")

    # ------------------------------------------------------------------ background
    def start(self, on_change: Callable[[], None]) -> None:
        """Re-resolve expired names in a greenlet; ``on_change()`` when an answer changed."""
        self.on_change = on_change
        if self.greenlet is None:
            self.greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        greenlet = self.greenlet
        self.greenlet = None
        if greenlet is not None:
            greenlet.kill(block=False)

    def _run(self) -> None:
        while True:
            try:
                now = self.clock()
                first = min((e.expires for e in self.entries.values()), default=now + 1.0)
                if first > now:
                    gevent.sleep(min(first - now, 1.0))  # names may arrive meanwhile
                    continue
                if self.refresh() and self.on_change is not None:
                    self.on_change()
            except gevent.GreenletExit:
                raise
            except Exception:  # noqa: BLE001 - the refresher must not die
                log.exception("upstream DNS refresh failed")
                gevent.sleep(1.0)

    def refresh(self) -> bool:
        """Re-resolve every expired name; True when an answer changed."""
        changed = False
        now = self.clock()
        for name, entry in list(self.entries.items()):
            if entry.expires > now:
                continue
            answer, error = self._resolve(name)
            entry.expires = self.clock() + self.valid
            if answer is None and entry.answer is not None:
                if every("dns " + name, 60.0):
                    log.error("failed to re-resolve upstream node %s: %s (keeping %s)",
                              name, error, entry.answer[0])
                continue  # keep the last good address through a DNS failure
            if answer != entry.answer:
                log.info("upstream node %s now resolves to %s", name,
                         answer[0] if answer else "nothing")
                entry.answer = answer
                changed = True
        return changed


#: this worker's cache (each worker process has its own after the fork)
DNS = DnsCache()
