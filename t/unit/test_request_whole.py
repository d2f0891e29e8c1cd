"""Request.whole (the usual request parsed without llhttp) against llhttp itself.

Whatever ``whole`` takes, it must read exactly as llhttp's callbacks do: same method,
target, forwarded headers, Host, per-request fields, keep-alive; whatever it refuses must
leave the request untouched for llhttp. A seeded generator mixes plain requests with the
edge cases of each rule (framing headers, obs-fold, bare LF, control bytes, blanks around
values, duplicate Host, HTTP/1.0, CONNECT, long targets, pipelining, bodies).
"""

from __future__ import annotations

import random

import pytest
from httptools import HttpParserCallbackError, HttpParserError, HttpRequestParser

from gateway.worker.request import Reject, Request


class _Router:
    def match_host(self, method, host, path, req):
        return None


class _Table:
    router = _Router()


class _Clock:
    next_tick = float("inf")


class _Server:
    max_head = 1024
    max_line = 256
    table = _Table()
    clock = _Clock()

    @staticmethod
    def now() -> float:
        return 0.0


class _Client:
    """What Request touches of its connection; records each request it is asked to start."""

    def __init__(self, trusted: bool = False):
        self.server = _Server()
        self.trusted = trusted
        self.no_keep = False
        self.active = None
        self.queue = None
        self.closing = False
        self.pstate = 0
        self.head_bytes = 0
        self.last_fields = None
        self.last_block = None
        self.started: list[dict] = []
        self.req = Request(self)
        self.parser = HttpRequestParser(self.req)

    def start(self, req: Request) -> None:
        self.started.append(_seen(req))

    def on_request(self, req: Request) -> None:
        self.start(req)


_FIELDS = ("method", "url", "host_hdr", "ua", "keep", "minor", "path", "host", "target",
           "rare", "xff", "xf", "referer", "auth", "conn", "ident", "clen", "chunked",
           "expect", "upgrade", "stream")


def _seen(req: Request) -> dict:
    seen = {name: getattr(req, name, None) for name in _FIELDS}
    seen["hdrs"] = b"".join(req.hdrs)
    return seen


def _by_whole(data: bytes, client: _Client | None = None):
    client = client or _Client()
    client.head_bytes = len(data)
    try:
        taken = client.req.whole(data)
    except Reject as e:
        return "reject %d" % e.status, client
    return taken, client


def _by_llhttp(data: bytes, trusted: bool = False):
    client = _Client(trusted)
    client.head_bytes = len(data)
    try:
        client.parser.feed_data(data)
    except HttpParserCallbackError as e:
        cause = e.__context__
        if isinstance(cause, Reject):
            return "reject %d" % cause.status, client
        raise
    except HttpParserError as e:
        return "error %s" % e, client
    return True, client


def _check(data: bytes, trusted: bool = False) -> bool:
    """``whole`` on ``data`` is either llhttp's reading of it or a refusal that changed
    nothing. True when ``whole`` took it."""
    client = _Client(trusted)
    taken, client = _by_whole(data, client)
    if taken is False:
        assert client.started == [] and client.pstate == 0 and client.req.url is None, data
        return False
    outcome, reference = _by_llhttp(data, trusted)
    assert outcome == taken, (data, outcome, taken)
    assert client.started == reference.started, data
    return True


def test_plain_request_is_taken_and_read_as_llhttp_does():
    data = b"GET /hello?a=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: wrk\r\n" \
           b"apikey: k\r\nX-T:\t  spaced  \r\nX-E:\r\n\r\n"
    assert _check(data)
    _taken, client = _by_whole(data)
    seen = client.started[0]
    assert seen["method"] == b"GET" and seen["url"] == b"/hello?a=1"
    assert seen["host_hdr"] == b"example.com:8080" and seen["ua"] == b"wrk"
    # leading blanks dropped, trailing ones kept, an empty value forwarded: as llhttp
    assert seen["hdrs"] == b"User-Agent: wrk\r\napikey: k\r\nX-T: spaced  \r\nX-E: \r\n"
    assert seen["keep"] is True and seen["minor"] == 1 and seen["rare"] is False


@pytest.mark.parametrize("data", [
    b"GET /a HTTP/1.0\r\nHost: x\r\n\r\n",                              # HTTP/1.0
    b"CONNECT /a HTTP/1.1\r\nHost: x\r\n\r\n",                          # not a plain method
    b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",                               # not origin-form
    b"GET http://x/a HTTP/1.1\r\nHost: x\r\n\r\n",                      # absolute-form
    b"GET /a\x80 HTTP/1.1\r\nHost: x\r\n\r\n",                          # byte llhttp refuses
    b"GET /a  HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",         # framing headers
    b"GET /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: ws\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: x\r\nProxy-Connection: close\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",                  # duplicate Host
    b"GET /a HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",                # obs-fold
    b"GET /a HTTP/1.1\r\nHost: x\nX: a\r\n\r\n",                       # bare LF
    b"GET /a HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",                 # NUL
    b"GET /a HTTP/1.1\r\nHost: x\r\nX : a\r\n\r\n",                     # blank before colon
    b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n",        # pipelined
    b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab",
    b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n",             # over max_line
    b"GET /a HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 1100 + b"\r\n\r\n",    # over max_head
])
def test_left_to_llhttp(data):
    assert not _check(data)


def test_per_request_headers_go_through_on_header():
    data = b"GET /a HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Zm9vOmJhcg==\r\n" \
           b"Referer: http://r/\r\nX-Forwarded-For: 1.2.3.4\r\nConnection: keep-alive\r\n\r\n"
    for trusted in (False, True):
        assert _check(data, trusted)
    _taken, client = _by_whole(data)
    seen = client.started[0]
    assert seen["rare"] is True and seen["auth"] == b"Basic Zm9vOmJhcg=="
    assert seen["conn"] == b"keep-alive" and seen["keep"] is True
    assert client.last_fields is None   # a block with per-request fields is not kept


def test_header_block_kept_per_connection():
    client = _Client()
    first = b"GET /a HTTP/1.1\r\nHost: x\r\nX-N: 1\r\n\r\n"
    assert _by_whole(first, client)[0] is True
    assert client.last_fields == b"Host: x\r\nX-N: 1\r\n"
    block = client.last_block
    assert _by_whole(b"PUT /b HTTP/1.1\r\nHost: x\r\nX-N: 1\r\n\r\n", client)[0] is True
    assert client.last_block is block   # the same block: not parsed again
    assert _by_whole(b"GET /a HTTP/1.1\r\nHost: x\r\nX-N: 2\r\n\r\n", client)[0] is True
    hdrs = [s["hdrs"] for s in client.started]
    assert hdrs == [b"X-N: 1\r\n", b"X-N: 1\r\n", b"X-N: 2\r\n"]
    assert [s["method"] for s in client.started] == [b"GET", b"PUT", b"GET"]


def test_invalid_routing_path_rejected_as_llhttp():
    data = b"GET /a/%2e%2e/%2e%2e/b HTTP/1.1\r\nHost: x\r\n\r\n"
    taken, _client = _by_whole(data)
    outcome, _ref = _by_llhttp(data)
    assert taken == outcome


# ------------------------------------------------------------------ the seeded generator
_NAMES = [b"Host", b"host", b"User-Agent", b"apikey", b"Accept", b"Cookie", b"X-Req",
          b"Authorization", b"Referer", b"X-Forwarded-For", b"X-Forwarded-Proto",
          b"X-Forwarded-Host", b"Connection", b"Proxy-Connection", b"Keep-Alive", b"TE",
          b"Content-Length", b"Transfer-Encoding", b"Expect", b"Upgrade", b"X-Real-IP",
          b"X-Consumer-Username", b"X Bad", b"X:Colon", b"", b"X-\xff", b"X\x00"]
_VALUES = [b"v", b"", b" ", b"  lead", b"trail  ", b"\tmix\t ", b"keep-alive", b"close",
           b"Keep-Alive", b"upgrade", b"0", b"5", b"chunked", b"100-continue",
           b"caf\xc3\xa9", b"a\x7fb", b"a\x00b", b"a\rb", b"a\nb", b"1.2.3.4, 5.6.7.8",
           b"https", b"x" * 40]
_METHODS = [b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE",
            b"CONNECT", b"get", b"G\x00T"]
_TARGETS = [b"/", b"/hello", b"/a/b?c=d&e", b"/%2e%2e/x", b"/a#frag", b"*", b"a",
            b"/sp ace", b"/\x80", b"/" + b"x" * 300, b"/~!$&'()*+,;=:@[]{}|^`\"<>\\"]
_VERSIONS = [b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 "]
_EOLS = [b"\r\n"] * 12 + [b"\n", b"\r"]


def _random_request(rnd: random.Random) -> bytes:
    head = b"%s %s %s%s" % (rnd.choice(_METHODS), rnd.choice(_TARGETS), rnd.choice(_VERSIONS),
                            rnd.choice(_EOLS))
    for _ in range(rnd.randrange(6)):
        sep = rnd.choice([b": ", b":", b":  ", b":\t", b" : "])
        head += rnd.choice(_NAMES) + sep + rnd.choice(_VALUES) + rnd.choice(_EOLS)
        if rnd.random() < 0.03:
            head += b" folded" + b"\r\n"
    head += b"\r\n"
    if rnd.random() < 0.05:
        head += rnd.choice([b"ab", b"GET / HTTP/1.1\r\n\r\n"])
    return head


def test_seeded_requests_read_as_llhttp_reads_them():
    rnd = random.Random(20261124)
    taken = 0
    for _ in range(20000):
        data = _random_request(rnd)
        if not data.endswith(b"\r\n\r\n"):
            continue           # the client only tries whole() on such reads
        trusted = rnd.random() < 0.5
        if _check(data, trusted):
            taken += 1
    assert taken > 600        # the generator does reach the fast path
