"""Error log and access log, nginx style.

Every process (master and workers) appends to the same files, opened with O_APPEND so each
line lands whole. Lines look like nginx's so people (and `.t` tests) can grep them:

    2026/11/23 23:55:01 [error] 12345#0: upstream connect failed: 127.0.0.1:1980

USR1 makes every process reopen its files (log rotation). Errors that can repeat at request
rate go through :func:`every` so a broken upstream or a dead etcd cannot flood the disk.

Secrets never reach these files: callers log names and ids, never keys, passwords, tokens or
Authorization/Cookie values; :func:`redact_headers` is the helper for header lists.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

NOTICE = 25
ALERT = 55
EMERG = 60
logging.addLevelName(NOTICE, "notice")
logging.addLevelName(ALERT, "alert")
logging.addLevelName(EMERG, "emerg")
for _level, _name in ((logging.DEBUG, "debug"), (logging.INFO, "info"),
                      (logging.WARNING, "warn"), (logging.ERROR, "error"),
                      (logging.CRITICAL, "crit")):
    logging.addLevelName(_level, _name)

#: nginx_config.error_log_level values → logging levels
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "notice": NOTICE,
          "warn": logging.WARNING, "error": logging.ERROR, "crit": logging.CRITICAL,
          "alert": ALERT, "emerg": EMERG}

#: the one logger the product writes its error log through
log = logging.getLogger("gateway")
log.propagate = False

SECRET_HEADERS = frozenset((b"authorization", b"proxy-authorization", b"cookie", b"set-cookie",
                            b"apikey", b"x-api-key"))


def open_append(path: str) -> int:
    """An O_APPEND fd on `path` (directories created): every write lands whole at the end,
    whichever process of the gateway makes it."""
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)


class NginxFormatter(logging.Formatter):
    """`2026/11/23 23:55:01 [warn] 123#0: message` (the timestamp is cached per second)."""

    _sec = -1
    _stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        sec = int(record.created)
        if sec != self._sec:
            self._sec = sec
            self._stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(sec))
        msg = record.getMessage()
        if record.exc_info:
            msg = "%s\n%s" % (msg, self.formatException(record.exc_info))
        return "%s [%s] %d#0: %s" % (self._stamp, record.levelname, record.process, msg)


class ReopenableFileHandler(logging.Handler):
    """Appends whole lines with one write(2) each; `reopen()` after rotation (USR1)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.fd = -1
        self.reopen()

    def reopen(self) -> None:
        old = self.fd
        self.fd = open_append(self.path)
        if old >= 0:
            os.close(old)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            os.write(self.fd, (self.format(record) + "\n").encode("utf-8", "replace"))
        except Exception:  # logging must never take a process down
            self.handleError(record)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        super().close()


class AccessLog:
    """Buffered access log: entries collect in memory and go out in one write per flush.

    A write per request would be one more syscall on the hot path; the worker flushes on a
    loop timer (and at exit), like nginx's `access_log ... buffer=`. An entry is a line
    (bytes) or what ``render`` makes one from: formatting a few hundred lines in one loop
    at the flush costs half of formatting each between two requests' system calls (the
    formatting code and data stay in the CPU caches).
    """

    __slots__ = ("path", "fd", "buf", "limit", "render")

    def __init__(self, path: str | None, limit: int = 512,
                 render: Callable[[Any], bytes] | None = None):
        self.path = path
        self.fd = -1
        self.buf: list[Any] = []
        self.limit = limit          # entries held before a flush
        self.render = render
        if path:
            self.reopen()

    def reopen(self) -> None:
        if not self.path:
            return
        self.flush()
        old = self.fd
        self.fd = open_append(self.path)
        if old >= 0:
            os.close(old)

    def write(self, entry: Any) -> None:
        if self.fd < 0:
            return
        buf = self.buf
        buf.append(entry)
        if len(buf) >= self.limit:
            self.flush()

    def flush(self) -> None:
        buf = self.buf
        if not buf or self.fd < 0:
            return
        self.buf = []
        render = self.render
        try:
            data = b"".join(buf if render is None else map(render, buf))
        except Exception:  # noqa: BLE001 - one bad entry must not cost the others
            log.exception("cannot render an access log line")
            data = b"".join(self._each(buf))
        try:
            os.write(self.fd, data)
        except OSError:
            pass

    def _each(self, buf: list[Any]) -> list[bytes]:
        out = []
        for entry in buf:
            try:
                out.append(self.render(entry))
            except Exception:  # noqa: BLE001
                pass
        return out

    def close(self) -> None:
        self.flush()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


_handler: ReopenableFileHandler | None = None


def setup(path: str | None, level: str = "warn") -> None:
    """Point the error log at `path` (stderr when None) at `level` (nginx level names)."""
    global _handler
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    if path:
        _handler = ReopenableFileHandler(path)
        handler: logging.Handler = _handler
    else:
        _handler = None
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(NginxFormatter())
    log.addHandler(handler)
    log.setLevel(LEVELS.get(level, logging.WARNING))


def reopen() -> None:
    """Reopen the error log file (USR1)."""
    if _handler is not None:
        _handler.reopen()


_last: dict[str, float] = {}


def every(key: str, interval: float = 10.0) -> bool:
    """True at most once per `interval` seconds for `key`: gate for errors that can repeat
    at request rate (``if every("etcd-down"): log.error(...)``)."""
    now = time.monotonic()
    t = _last.get(key)
    if t is not None and now - t < interval:
        return False
    if len(_last) > 4096:
        _last.clear()
    _last[key] = now
    return True


def redact_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A copy of `headers` safe to log: secret-bearing values replaced by `***`."""
    return [(n, b"***" if n.lower() in SECRET_HEADERS else v) for n, v in headers]


#: conf fields whose values are credentials (redis_password, secret_key, auth tokens...)
_SECRET_FIELD = re.compile(r"password|secret|token|private_key|api_key|auth", re.I)


def redact_conf(value: Any) -> Any:
    """A copy of a plugin/config object fit for a log line: credential fields masked."""
    if isinstance(value, dict):
        return {k: "***" if isinstance(k, str) and _SECRET_FIELD.search(k)
                and not isinstance(v, (dict, list)) else redact_conf(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact_conf(v) for v in value]
    return value

