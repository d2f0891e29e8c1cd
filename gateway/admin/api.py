"""What every Admin API handler shares: the parsed request, answers and errors.

A handler takes an :class:`AdminRequest` and returns an :class:`Answer` (status, a JSON-able
body or raw text, extra headers), or raises :class:`Fail` to answer an error in APISIX's shape
(`{"error_msg": ...}` by default, or any body it is given).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

#: APISIX reads admin bodies up to 1.5 MiB
MAX_BODY = 1536 * 1024

NOT_FOUND = {"message": "Key not found"}


class Fail(Exception):
    def __init__(self, status: int, body: Any):
        super().__init__(status, body)
        self.status = status
        self.body = {"error_msg": body} if isinstance(body, str) else body


@dataclass
class Answer:
    status: int
    body: Any = None              # dict/list → JSON; str → as is; None → empty
    headers: list[tuple[str, str]] = field(default_factory=list)


_MISSING = object()


class AdminRequest:
    """One Admin API request: method, path segments after /apisix/admin, query, body."""

    def __init__(self, method: str, path: str, query: str, body: bytes,
                 headers: dict[str, str], remote_addr: str):
        self.method = method
        self.path = path
        self.segments = [s for s in path.split("/") if s]
        self.args = dict(parse_qsl(query, keep_blank_values=True))
        self.raw = body
        self.headers = headers
        self.remote_addr = remote_addr
        self._json: Any = _MISSING

    def json(self) -> Any:
        """The decoded body; None when it is empty; Fail(400) when it is not JSON."""
        if self._json is _MISSING:
            if not self.raw or not self.raw.strip():
                self._json = None
            else:
                try:
                    self._json = json.loads(self.raw)
                except ValueError as exc:
                    raise Fail(400, {"error_msg": "invalid request body: %s" % exc,
                                     "req_body": self.raw.decode("utf-8", "replace")}) from None
        return self._json

    def ttl(self) -> int | None:
        """`?ttl=` as an int; Fail(400) when it is not a number."""
        value = self.args.get("ttl")
        if value is None:
            return None
        try:
            ttl = float(value)
        except ValueError:
            raise Fail(400, "invalid argument ttl: should be a number") from None
        return max(1, int(ttl))


def encode(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
