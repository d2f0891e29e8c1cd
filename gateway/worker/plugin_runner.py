"""Running a route's plugin chain for one request (the compiled :class:`Chain` of
plugin_chain.py), from the callback-driven connection code.

Request side, in APISIX 3.17+ order (spec §3.3): global ``rewrite`` → route ``rewrite`` →
consumer merge (:func:`merge_consumer`, the hook auth plugins will fill) → global ``access``
→ route ``access`` → upstream pick → ``before_proxy`` → proxy. A phase function returning a
status (or ``(status, body)``) ends the request with that response: a dict/list body is JSON
with a trailing newline; ``_meta.error_response`` replaces the body of exits >= 400. An
exception in a plugin is logged with the route id and the plugin name and answered 500; the
worker goes on.

Response side, through two small hooks in upstream.py (only requests that ran a chain reach
them): ``header_filter`` sees the status and headers before they are sent, ``body_filter``
each body piece (the body is then re-chunked: its length may change). Plugin exits go
through the same filters. ``log`` runs when the response has been written
(Client.finish).

A chain with a BLOCKING plugin runs on a parked greenlet of :class:`Parked` (long-lived,
reused: ``gevent.spawn`` per request would cost an mmap + munmap), and the connection's
callbacks pick up where it leaves; other chains run inline in the callback.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import gevent
from greenlet import greenlet, getcurrent

from gateway.core.log import every, log
from gateway.worker.balancer import Ewma, LeastConn, RoundRobin
from gateway.worker.consumers import GROUP_MISSING, consumer_chain, strip_identity
from gateway.worker.plugin_chain import render_body
from gateway.worker.plugin_ctx import PluginCtx, ResponseHeaders, _values
from gateway.worker.request import STREAM_OPEN
from gateway.worker.response import COLSP, CRLF, NOT_FOUND_ROUTE

__all__ = ["start", "response_head", "response_body", "response_pieces", "log_phase",
           "merge_consumer", "plain_block", "Parked", "PARKED"]

#: balancers whose pick never reads the request
_CTX_FREE = frozenset((RoundRobin, Ewma, LeastConn))

#: greenlets kept for BLOCKING chains; more concurrent blocking requests wait in a queue
POOL_SIZE = 512


class Parked:
    """A small pool of long-lived greenlets fed by a queue. :meth:`submit` from the hub
    (a watcher callback) switches straight into an idle greenlet, which runs until its job
    blocks or ends and then parks itself again; no greenlet is created per job."""

    __slots__ = ("size", "idle", "backlog", "count", "hub")

    def __init__(self, size: int = POOL_SIZE):
        self.size = size
        self.idle: list[greenlet] = []
        self.backlog: deque[tuple[Callable[[Any], None], Any]] = deque()
        self.count = 0
        self.hub: Any = None

    def submit(self, fn: Callable[[Any], None], arg: Any) -> None:
        hub = self.hub
        if hub is None:
            hub = self.hub = gevent.get_hub()
        if getcurrent() is not hub:
            # from a parked greenlet itself (e.g. a pipelined request started by the end
            # of the previous one): switching greenlet-to-greenlet would strand this one
            hub.loop.run_callback(self.submit, fn, arg)
            return
        if self.idle:
            self.idle.pop().switch(fn, arg)
        elif self.count < self.size:
            self.count += 1
            greenlet(self._run, parent=hub).switch(fn, arg)
        else:
            self.backlog.append((fn, arg))

    def _run(self, fn: Callable[[Any], None], arg: Any) -> None:
        me = getcurrent()
        while True:
            try:
                fn(arg)
            except Exception:  # noqa: BLE001 - a job's bug must not kill the pool
                log.exception("unexpected error in a plugin greenlet")
            if self.backlog:
                fn, arg = self.backlog.popleft()
                continue
            self.idle.append(me)
            fn, arg = self.hub.switch()


PARKED = Parked()


# ------------------------------------------------------------------ request side
def start(client: Any, req: Any, target: Any, chain: Any) -> None:
    """Client.start's branch for a request whose route (or the global rules) has plugins."""
    ctx = PluginCtx(client, req, target, chain)
    req.pctx = ctx
    if chain.blocking:
        if req.stream == STREAM_OPEN:
            client.hold_body()  # body pieces wait in the socket until we proxy
        PARKED.submit(_request_side, ctx)
    else:
        _request_side(ctx)


def _request_side(ctx: PluginCtx) -> None:
    chain = ctx.chain
    if chain.auth:
        strip_identity(ctx)  # only the gateway names the consumer to the upstream
    # (an empty phase, global rules' usually, costs no call)
    done = _phase(ctx, chain.g_rewrite, "rewrite") if chain.g_rewrite else None
    if done is None and chain.rewrite:
        done = _phase(ctx, chain.rewrite, "rewrite")
    if done is None and ctx.consumer is not None:
        done = merge_consumer(ctx)
        chain = ctx.chain
    if done is None and chain.g_access:
        done = _phase(ctx, chain.g_access, "access")
    if done is None and chain.access:
        done = _phase(ctx, chain.access, "access")
    client = ctx.client
    req = ctx.req   # (a detached copy when the client pipelined while we blocked)
    if client.closed or client.active is not req:
        return      # the client went away while a blocking plugin waited
    if done is not None:
        _exit(ctx, done[0], done[1])
        return
    target = ctx.target
    if target is None:
        _exit(ctx, 404, NOT_FOUND_ROUTE)
        return
    if target.error:
        _exit(ctx, target.error, None)
        return
    # with a consumer attached, chash `hash_on: consumer` needs the consumer_name variable
    # (the balancers that ignore the request are not given variables built for nothing)
    node = target.upstream.single
    if node is None:
        balancer = target.upstream.balancer
        node = balancer.pick(ctx.vars if ctx.consumer is not None
                             and type(balancer) not in _CTX_FREE else req)
        if node is None:
            _exit(ctx, 502, None)
            return
    if chain.before_proxy:
        done = _phase(ctx, chain.before_proxy, "before_proxy")
        if client.closed or client.active is not ctx.req:
            return
        if done is not None:
            _exit(ctx, done[0], done[1])
            return
        req = ctx.req
    client.server.pool.forward(client, req, target, node, req.upstream_request(target, node))


def merge_consumer(ctx: PluginCtx) -> tuple[int, bytes | None] | None:
    """After the route's rewrite phase: an auth plugin that identified a consumer sets
    ``ctx.consumer``; its consumer-group and consumer plugins are then merged over the
    route's (spec §3.2, precedence consumer > consumer group > route) and the newly added
    ones run their rewrite phase (gateway.worker.consumers: merged once per (route,
    consumer) and cached, so this is a dict get after the first request)."""
    identity = ctx.consumer
    if identity is None:
        return None
    merged = consumer_chain(ctx.chain, identity)
    if merged is None:
        return None
    if merged is GROUP_MISSING:
        return 503, None
    ctx.chain = merged
    if merged.consumer_rewrite:
        return _phase(ctx, merged.consumer_rewrite, "rewrite")
    return None


def _phase(ctx: PluginCtx, entries: tuple, phase: str) -> tuple[int, bytes | None] | None:
    """Run one request-side phase; the exit ``(status, body bytes | None)`` of the plugin
    that ended the request, or None."""
    for fn, inst in entries:
        if inst.filter is not None and not ctx.passes(inst):
            continue
        if inst.pre is not None:
            _pre(ctx, inst)
        try:
            result = fn(inst.conf, ctx)
        except Exception:  # noqa: BLE001 - a plugin's bug answers 500, the worker lives
            _failed(ctx, inst, phase)
            return 500, None
        if result is None:
            continue
        if isinstance(result, tuple):
            code = result[0] if result else None
            body = result[1] if len(result) > 1 else None
        else:
            code, body = result, None
        if not isinstance(code, int):
            if code is not None or body is not None:
                _failed(ctx, inst, phase, "returned %r, expected a status or (status, body)"
                        % (result,))
                return 500, None
            continue
        if code >= 400:
            log.warning("%s exits with http status code %d", inst.name, code)
            if inst.error_response is not None:
                return code, inst.error_response
        try:
            return code, render_body(body)
        except (TypeError, ValueError):
            _failed(ctx, inst, phase, "returned a body that is not JSON-serializable")
            return 500, None
    return None


def _pre(ctx: PluginCtx, inst: Any) -> None:
    try:
        inst.pre(inst.conf, ctx)
    except Exception as e:  # noqa: BLE001
        log.error("pre_function execution for plugin %s failed: %s", inst.name, e)


def _failed(ctx: PluginCtx, inst: Any, phase: str, why: str | None = None) -> None:
    if every("plugin %s %s %s" % (ctx.route_id, inst.name, phase), 1.0):
        if why is None:
            log.exception("plugin %s failed in the %s phase, route %s", inst.name, phase,
                          ctx.route_id)
        else:
            log.error("plugin %s failed in the %s phase, route %s: %s", inst.name, phase,
                      ctx.route_id, why)


def _exit(ctx: PluginCtx, status: int, body: bytes | None) -> None:
    """A response the plugins made (or the runner: 404/502/...), through header_filter and
    body_filter like an upstream's."""
    client = ctx.client
    req = ctx.req
    chain = ctx.chain
    if body is None and status < 300:
        body = b""   # nginx's ngx.exit(200): no page, an empty body
    if chain.response or ctx.has_response_edits:
        headers = ResponseHeaders([["Content-Type", "text/plain"]] if body is not None
                                  else [])
        ctx.open_response(status, headers)
        if chain.header_filter:
            _filters(ctx, chain.header_filter, "header_filter")
        status = ctx.status
        if chain.body_filter and body is not None:
            body = _body_filter(ctx, body, True)
        ctype = headers.get("content-type")
        headers.remove("content-type")
        client.respond(req, status, body,
                       b"Content-Type: %s\r\n" % ctype.encode("latin-1") if ctype else None,
                       headers.render())
    else:
        client.respond(req, status, body)
    if client.body_wait:
        client.release_body()   # the unread body is parsed and dropped


# ------------------------------------------------------------------ response side
def response_head(up: Any) -> None:
    """UpConn._head's hook: pending response-header edits, then header_filter, on the
    upstream's status and headers (``up.code``, and ``up.hdrs`` set to the headers the
    client gets, as byte pieces; ``up.clen`` None when the body may change size)."""
    ctx = up.req.pctx
    chain = ctx.chain
    if not chain.response:
        ops = ctx._resp_ops  # noqa: SLF001
        if not ops:
            return
        # only pending edits (limit-count's X-RateLimit-*...), no filter to see the
        # headers: applied to the header bytes, without a ResponseHeaders round trip
        kept = up.kept_headers()
        block = plain_block(ctx, kept, up.code)
        if block is not None:
            up.hdrs = [kept, block]
            return
        flat = _edit_flat(up.headers_flat(), ops)
        if flat is not None:
            ctx._resp_ops = None  # noqa: SLF001
            ctx.status = up.code
            up.hdrs = flat
            return
    headers = ResponseHeaders.from_flat(up.headers_flat())
    ctx.open_response(up.code, headers)
    if chain.header_filter:
        _filters(ctx, chain.header_filter, "header_filter")
    up.hdrs = headers.flat()
    up.code = ctx.status
    if chain.body_filter:
        up.clen = None   # the body may change size: re-chunked


def plain_block(ctx: PluginCtx, kept: bytes, code: int) -> bytes | None:
    """For a chain without response plugins: its pending response-header edits as one block
    to send after the upstream's kept headers (b"" when there are none), then marked
    applied; None when they need more than appending one block (response_head applies
    them then)."""
    ops = ctx._resp_ops  # noqa: SLF001
    if not ops:
        return b""
    flat = _add_blocks(kept, ops) if len(ops) == 1 else None
    if flat is None:
        return None
    ctx._resp_ops = None  # noqa: SLF001
    ctx.status = code
    return flat[1]


#: per set of block names: the last kept header block looked at, and whether it has none of
#: them (an upstream repeats its headers response after response). Name sets come from the
#: configs (metadata header names, rules' prefixes); past BLOCK_FREE_MAX of them over a
#: worker's life, new ones are checked without being remembered.
_BLOCK_FREE: dict[frozenset[bytes], tuple[bytes, bool]] = {}
BLOCK_FREE_MAX = 256


def _add_blocks(kept: bytes, ops: list[tuple[str, Any, Any]]) -> list[bytes] | None:
    """The one-block case (limit-count's quota headers): the kept header bytes and the
    block, when the upstream sent none of the block's headers; else None."""
    op, names, block = ops[0]
    if op != "block":
        return None
    if kept:
        last = _BLOCK_FREE.get(names)
        if last is not None and last[0] == kept:
            free = last[1]
        else:
            free = _has_none(kept, names)
            if last is not None or len(_BLOCK_FREE) < BLOCK_FREE_MAX:
                _BLOCK_FREE[names] = (kept, free)
        if not free:
            return None
    return [kept, block]


def _has_none(kept: bytes, names: frozenset[bytes]) -> bool:
    """True when no header line of ``kept`` has one of the lower-case ``names``."""
    low = kept.lower()
    for name in names:
        at = low.find(name + b":")
        while at >= 0:
            if at == 0 or low[at - 1] == 10:   # at a line start: the upstream has it
                return False
            at = low.find(name + b":", at + 1)
    return True


def _edit_flat(flat: list[bytes], ops: list[tuple[str, Any, Any]]) -> list[bytes] | None:
    """``ops`` (set/add/remove/block) applied to the upstream's ``[name, ": ", value, CRLF,
    ...]`` as ResponseHeaders would (names compared ignoring case, values as header_bytes
    gives them). The result is only joined into the head: what the ops add is appended
    after the upstream's headers, a block as one piece. None (ResponseHeaders does it)
    when a name is not ASCII or an op touches a header an earlier op added."""
    out = flat
    added: set[bytes] = set()
    tail: list[bytes] = []
    for op, name, value in ops:
        if op == "block":
            if not added.isdisjoint(name):
                return None
            out = _without(out, name)
            added.update(name)
            tail.append(value)
            continue
        if not name.isascii():
            return None
        raw = name.encode("ascii")
        low = raw.lower()
        if low in added:
            return None
        if op != "add":
            out = _without(out, (low,))
            if op == "remove":
                continue
        kind = type(value)
        # (what header_bytes gives for the usual int/str values, without its checks)
        values = (b"%d" % value,) if kind is int else \
            (value.encode("latin-1", "replace"),) if kind is str else _values(value)
        if values:
            added.add(low)
            for v in values:
                tail += (raw, COLSP, v, CRLF)
    return out + tail if tail else out


def _without(flat: list[bytes], lows: Any) -> list[bytes]:
    """``flat`` without the headers whose lower-case name is in ``lows`` (the list itself
    when none is there: the usual case)."""
    for i in range(0, len(flat) - 3, 4):
        if flat[i].lower() in lows:
            return [x for j in range(0, len(flat) - 3, 4)
                    if flat[j].lower() not in lows for x in flat[j:j + 4]]
    return flat


def response_body(up: Any, body: bytes) -> bytes:
    """UpConn._whole's hook: the whole body through body_filter (eof)."""
    ctx = up.req.pctx
    if not ctx.chain.body_filter:
        return body
    return _body_filter(ctx, body, True)


def response_pieces(up: Any, body: list[bytes], last: bool) -> list[bytes]:
    """UpConn._pieces's hook: the pieces parsed so far through body_filter; ``last`` is
    the end of the body (a filter may still add to it then)."""
    ctx = up.req.pctx
    if not ctx.chain.body_filter:
        return body
    up.body = []
    out = []
    n = len(body)
    for i, piece in enumerate(body):
        out.append(_body_filter(ctx, piece, last and i == n - 1))
    if last and n == 0:
        out.append(_body_filter(ctx, b"", True))
    return [piece for piece in out if piece]


def _body_filter(ctx: PluginCtx, chunk: bytes, eof: bool) -> bytes:
    for fn, inst in ctx.chain.body_filter:
        if inst.filter is not None and not ctx.passes(inst):
            continue
        if inst.pre is not None:
            _pre(ctx, inst)
        try:
            result = fn(inst.conf, ctx, chunk, eof)
        except Exception:  # noqa: BLE001 - the response goes on unfiltered by it
            _failed(ctx, inst, "body_filter")
            continue
        if result is not None:
            chunk = result if isinstance(result, bytes) else str(result).encode()
    return chunk


def _filters(ctx: PluginCtx, entries: tuple, phase: str) -> None:
    """header_filter / log: every plugin runs; failures are logged and skipped."""
    for fn, inst in entries:
        if inst.filter is not None and not ctx.passes(inst):
            continue
        if inst.pre is not None:
            _pre(ctx, inst)
        try:
            fn(inst.conf, ctx)
        except Exception:  # noqa: BLE001
            _failed(ctx, inst, phase)


def log_phase(ctx: PluginCtx, status: int) -> None:
    """Client.finish's hook: the response is written; run the log phase (on a parked
    greenlet when a log plugin may block)."""
    chain = ctx.chain
    if not chain.log:
        return
    ctx.status = status
    if chain.blocking_log:
        PARKED.submit(_log, ctx)
    else:
        _filters(ctx, chain.log, "log")


def _log(ctx: PluginCtx) -> None:
    _filters(ctx, ctx.chain.log, "log")
