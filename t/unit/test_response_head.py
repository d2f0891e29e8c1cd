"""The upstream response head as the client gets it (gateway.worker.upstream) and the
response-header edits applied to it without ResponseHeaders (gateway.worker.plugin_runner)."""

from __future__ import annotations

from gateway.worker import plugin_runner
from gateway.worker.plugin_runner import _add_blocks, _edit_flat
from gateway.worker.upstream import _DROP, _SIMPLE_FIELDS, _SIMPLE_STATUS, _client_status, _split_head

NGINX_HEAD = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 24 Nov 2026 05:20:00 GMT\r\n"
              b"Content-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n"
              b"Keep-Alive: timeout=5\r\nX-Accel-Expires: 0\r\nX-A: 1\r\n\r\nhello")


def test_split_head_crlf():
    status, fields, rest = _split_head(NGINX_HEAD)
    assert status == b"HTTP/1.1 200 OK"
    assert fields.startswith(b"Server: nginx") and fields.endswith(b"X-A: 1\r\n")
    assert rest == b"hello"


def test_split_head_without_headers_and_bare_lf():
    assert _split_head(b"HTTP/1.1 204 No Content\r\n\r\n") == (b"HTTP/1.1 204 No Content", b"", b"")
    assert _split_head(b"HTTP/1.1 200 OK\nX-A: 1\n\nbody") == (b"HTTP/1.1 200 OK", b"X-A: 1\r\n",
                                                               b"body")


def test_dropped_headers():
    # hop-by-hop, framing and nginx-hidden headers go; the rest stays byte for byte
    _status, fields, _rest = _split_head(NGINX_HEAD)
    assert _DROP.sub(b"", fields) == b"Content-Type: text/plain\r\nX-A: 1\r\n"
    # a name that only starts like a dropped one stays ("te" vs "Tea")
    assert _DROP.sub(b"", b"Tea: green\r\nTE: trailers\r\nDATE: x\r\n") == b"Tea: green\r\n"


def test_client_status_line():
    assert _client_status(b"HTTP/1.1 200 OK", 200) == b"HTTP/1.1 200 OK\r\n"
    assert _client_status(b"HTTP/1.0 404 Nope", 404) == b"HTTP/1.1 404 Nope\r\n"
    assert _client_status(b"HTTP/1.1 201", 201) == b"HTTP/1.1 201 Created\r\n"


BLOCK = b"X-RateLimit-Limit: 5\r\nX-RateLimit-Remaining: 4\r\n"
NAMES = frozenset((b"x-ratelimit-limit", b"x-ratelimit-remaining"))


def test_block_appended_when_upstream_lacks_it():
    assert _add_blocks(b"X-A: 1\r\n", [("block", NAMES, BLOCK)]) == [b"X-A: 1\r\n", BLOCK]
    assert _add_blocks(b"", [("block", NAMES, BLOCK)]) == [b"", BLOCK]
    # a header merely ending like one of the names is not it
    assert _add_blocks(b"X-Old-X-RateLimit-Limit: 1\r\n", [("block", NAMES, BLOCK)]) is not None


def test_block_over_an_upstream_header_falls_back():
    assert _add_blocks(b"x-ratelimit-limit: 9\r\n", [("block", NAMES, BLOCK)]) is None
    flat = [b"X-RateLimit-Limit", b": ", b"9", b"\r\n", b"X-A", b": ", b"1", b"\r\n"]
    out = _edit_flat(flat, [("block", NAMES, BLOCK)])
    assert b"".join(out) == b"X-A: 1\r\n" + BLOCK


def test_block_check_remembered_per_header_block():
    """The answer for a kept block is remembered, and a different block is looked at anew:
    with and without the upstream's own quota header, alternately, twice over."""
    with_it, without = b"X-RateLimit-Remaining: 1\r\nX-A: 1\r\n", b"X-A: 1\r\n"
    for _ in range(2):
        assert _add_blocks(with_it, [("block", NAMES, BLOCK)]) is None
        assert _add_blocks(with_it, [("block", NAMES, BLOCK)]) is None
        assert _add_blocks(bytes(bytearray(without)), [("block", NAMES, BLOCK)]) == [without,
                                                                                     BLOCK]
        assert _add_blocks(without, [("block", NAMES, BLOCK)]) == [without, BLOCK]


def test_block_check_memory_is_bounded():
    """Name sets beyond BLOCK_FREE_MAX (config churn of header names over a worker's
    life) are still checked right, but not remembered."""
    for i in range(plugin_runner.BLOCK_FREE_MAX + 50):
        names = frozenset((b"x-%d-ratelimit-limit" % i,))
        block = b"X-%d-RateLimit-Limit: 1\r\n" % i
        assert _add_blocks(b"X-A: 1\r\n", [("block", names, block)]) == [b"X-A: 1\r\n", block]
        assert _add_blocks(b"X-%d-RateLimit-Limit: 2\r\n" % i, [("block", names, block)]) is None
    assert len(plugin_runner._BLOCK_FREE) <= plugin_runner.BLOCK_FREE_MAX


def test_edit_flat_set_add_remove():
    flat = [b"X-A", b": ", b"1", b"\r\n", b"X-B", b": ", b"2", b"\r\n"]
    out = _edit_flat(flat, [("set", "X-A", 3), ("add", "X-C", "c"), ("remove", "X-B", None)])
    assert b"".join(out) == b"X-A: 3\r\nX-C: c\r\n"
    # an op on a header an earlier op added: ResponseHeaders does it (None)
    assert _edit_flat(flat, [("set", "X-C", 1), ("set", "X-C", 2)]) is None
    assert _edit_flat(flat, [("set", "Ü", 1)]) is None


def test_simple_status_lines():
    # framed without llhttp: HTTP/1.1 and a final status, reason optional
    assert _SIMPLE_STATUS.fullmatch(b"HTTP/1.1 200 OK")
    assert _SIMPLE_STATUS.fullmatch(b"HTTP/1.1 404")
    assert _SIMPLE_STATUS.fullmatch(b"HTTP/1.1 503 Service \xfcnavailable")
    for line in (b"HTTP/1.0 200 OK", b"HTTP/1.1 101 Switching Protocols", b"HTTP/1.1 2OO OK",
                 b"HTTP/1.1 200 OK\x00", b"HTTP/1.1 200\rOK", b"HTTP/1.1  200 OK",
                 b"HTTP/1.1 600 Odd"):
        assert _SIMPLE_STATUS.fullmatch(line) is None, line


def test_simple_header_blocks():
    assert _SIMPLE_FIELDS.fullmatch(b"")
    assert _SIMPLE_FIELDS.fullmatch(b"Content-Type: text/plain\r\nX-A:\r\nX-B: caf\xe9\t\r\n")
    for block in (b"Bad Name: x\r\n", b"X-A: 1\n", b"X-A: 1\rX-B: 2\r\n", b"X-A: \x00\r\n",
                  b": empty name\r\n", b" X-A: folded\r\n", b"X-A: 1\r\n\r\n"):
        assert _SIMPLE_FIELDS.fullmatch(block) is None, block
