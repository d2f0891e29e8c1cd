"""Upstream node selection: roundrobin, chash, ewma, least_conn, with priority groups.

Every balancer is built once per table from the upstream's nodes (weight > 0 only) and
answers :meth:`Balancer.pick` per request. Nodes are grouped by ``priority`` (highest
first): a pick uses the highest group with a usable node, so backup nodes (lower, often
negative, priority) take traffic only while every node above them is unusable.

A node is unusable for one pick when it was already *tried* by this request (a retry moves
to another node, as APISIX's ``balancer_tried_servers``) or when the upstream's health
checks hold it unhealthy (:class:`gateway.worker.healthcheck.Health`, whose ``bad`` set of
node names the balancer reads; no checks → ``health`` is None and costs one test). When
every node is unhealthy, APISIX picks from all of them: so do we. Failures do not mark a
node down across requests (APISIX without health checks keeps trying a dead node, each
request then retries elsewhere); that is the health checks' job.
:meth:`Balancer.done` reports a completed exchange (latency for ewma, the connection count
for least_conn), :meth:`Balancer.failed` a failed one.

* ``roundrobin``: nginx's smooth weighted round robin (each pick adds every node's weight
  to its current weight, takes the largest, subtracts the total from it): weights 5:1:1
  give ``a a b a c a a``, never bursts.
* ``chash``: a ketama-like ring per group, 160 points per weight unit (capped), md5 at
  build; a request's key (``hash_on``: vars, header, cookie, consumer, vars_combinations)
  is crc32'd and looked up by bisection. Removing a node moves only the keys it owned.
  An empty key falls back to ``remote_addr``, as APISIX does.
* ``ewma``: exponentially weighted moving average of response time with a 10 s decay,
  power of two choices (APISIX's ewma balancer ignores weights too).
* ``least_conn``: fewest active exchanges per weight unit; ties by config order.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
import re
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from gateway.core.ctxvars import RequestVars, getter

__all__ = ["Balancer", "make_balancer", "KINDS", "chash_key_fn"]

KINDS = ("roundrobin", "chash", "ewma", "least_conn")
#: ring points per weight unit, and the cap per node (a weight of 1000 must not build
#: a ring of 160,000 points per node)
CHASH_POINTS = 160
CHASH_MAX_POINTS = 160 * 20
#: ewma decay time constant, seconds
EWMA_DECAY = 10.0
#: ewma penalty (seconds) recorded for a failed node
EWMA_FAIL_PENALTY = 5.0

clock: Callable[[], float] = time.monotonic


class Balancer:
    """Base: priority groups, tried/unhealthy exclusion. Subclasses implement
    :meth:`_choose`."""

    __slots__ = ("nodes", "groups", "health", "make_vars")

    def __init__(self, nodes: list[Any], make_vars: Callable[[Any], RequestVars] | None = None,
                 health: Any = None):
        self.nodes = nodes
        groups: dict[int, list[Any]] = {}
        for n in nodes:
            groups.setdefault(n.priority, []).append(n)
        #: node lists by priority, highest first
        self.groups = [groups[p] for p in sorted(groups, reverse=True)]
        #: the upstream's health state (an object with a ``bad`` set of unhealthy node
        #: names), or None when the upstream has no health checks
        self.health = health
        self.make_vars = make_vars

    def pick(self, ctx: Any = None, tried: Any = None) -> Any:
        """The node for this request, or None when there is none (no node at all, or every
        node is in ``tried``: the nodes this request already failed on)."""
        health = self.health
        if tried is None and (health is None or not health.bad):
            groups = self.groups
            return self._choose(groups[0], 0, ctx, None) if groups else None
        bad = health.bad if health is not None else ()
        if bad:
            node = self._pick_without(ctx, tried, bad)
            if node is not None:
                return node
            # every untried node is unhealthy: APISIX then picks from all of them
        return self._pick_without(ctx, tried, ()) if tried else \
            self._choose(self.groups[0], 0, ctx, None) if self.groups else None

    def _pick_without(self, ctx: Any, tried: Any, bad: Any) -> Any:
        """Highest priority group with a node neither tried nor in ``bad`` (rare path)."""
        for i, group in enumerate(self.groups):
            skip = {id(n) for n in group if n.name in bad or (tried and n in tried)}
            if len(skip) == len(group):
                continue
            return self._choose(group, i, ctx, skip or None)
        return None

    def failed(self, node: Any) -> None:
        """An exchange with ``node`` failed (connect error, reset, timeout)."""

    def done(self, node: Any, latency: float) -> None:
        """An exchange with ``node`` completed in ``latency`` seconds."""

    def _choose(self, group: list[Any], index: int, ctx: Any, skip: set[int] | None) -> Any:
        """A node of ``group`` (``self.groups[index]``) whose id is not in ``skip`` (None:
        every node may be chosen; never all of the group)."""
        raise NotImplementedError


class RoundRobin(Balancer):
    """nginx's smooth weighted round robin, per priority group."""

    __slots__ = ("current", "totals")

    def __init__(self, nodes: list[Any], make_vars: Any = None, health: Any = None):
        super().__init__(nodes, make_vars, health)
        self.current = [[0] * len(g) for g in self.groups]
        self.totals = [sum(n.weight for n in g) for g in self.groups]

    def _choose(self, group: list[Any], index: int, ctx: Any, skip: set[int] | None) -> Any:
        if len(group) == 1:
            return group[0]
        current = self.current[index]
        best = -1
        best_value = 0
        total = 0
        for i, node in enumerate(group):
            if skip is not None and id(node) in skip:
                continue
            w = node.weight
            value = current[i] + w
            current[i] = value
            total += w
            if best < 0 or value > best_value:
                best, best_value = i, value
        current[best] = best_value - total
        return group[best]


def chash_key_fn(hash_on: str, key: str) -> Callable[[RequestVars], str | None]:
    """The key of a request for ``hash_on``/``key`` (schema-validated upstream fields)."""
    if hash_on == "header":
        return getter("http_" + key.lower().replace("-", "_"))
    if hash_on == "cookie":
        return getter("cookie_" + key)
    if hash_on == "consumer":
        return getter("consumer_name")
    if hash_on == "vars_combinations":
        pieces: list[Any] = []
        pos = 0
        for m in re.finditer(r"\$(\w+)|\$\{(\w+)\}", key):
            if m.start() > pos:
                pieces.append(key[pos:m.start()])
            pieces.append(getter(m.group(1) or m.group(2)))
            pos = m.end()
        if pos < len(key):
            pieces.append(key[pos:])

        def combined(v: RequestVars) -> str | None:
            out = []
            for p in pieces:
                if isinstance(p, str):
                    out.append(p)
                else:
                    value = p(v)
                    if value is not None:
                        out.append(str(value))
            return "".join(out) or None
        return combined
    return getter(key)  # vars


class ConsistentHash(Balancer):
    """A hash ring per priority group; a failed node passes its keys to the next point."""

    __slots__ = ("rings", "key_of")

    def __init__(self, nodes: list[Any], make_vars: Any = None, hash_on: str = "vars",
                 key: str = "remote_addr", health: Any = None):
        super().__init__(nodes, make_vars, health)
        self.key_of = chash_key_fn(hash_on, key or "remote_addr")
        self.rings: list[tuple[list[int], list[Any]]] = []
        for group in self.groups:
            points: list[tuple[int, int, Any]] = []
            for order, node in enumerate(group):
                name = node.name if isinstance(node.name, bytes) else str(node.name).encode()
                count = min(CHASH_POINTS * node.weight, CHASH_MAX_POINTS)
                for i in range((count + 3) // 4):
                    digest = hashlib.md5(name + b"-%d" % i).digest()
                    for j in range(4):
                        points.append((int.from_bytes(digest[j * 4:j * 4 + 4], "little"),
                                       order, node))
            points.sort(key=lambda p: (p[0], p[1]))
            self.rings.append(([p[0] for p in points], [p[2] for p in points]))

    def key(self, ctx: Any) -> bytes:
        v = ctx if isinstance(ctx, RequestVars) or self.make_vars is None \
            else self.make_vars(ctx)
        value = self.key_of(v) if isinstance(v, RequestVars) else None
        if value is None or value == "":
            value = v.remote_addr.decode("latin-1") if isinstance(v, RequestVars) else ""
        return str(value).encode()

    def _choose(self, group: list[Any], index: int, ctx: Any, skip: set[int] | None) -> Any:
        if len(group) == 1:
            return group[0]
        hashes, owners = self.rings[index]
        h = zlib.crc32(self.key(ctx)) if ctx is not None else 0
        i = bisect.bisect_left(hashes, h)
        n = len(hashes)
        if skip is None:
            return owners[i % n]
        for step in range(n):  # the next point clockwise owned by a usable node
            node = owners[(i + step) % n]
            if id(node) not in skip:
                return node
        return None


class Ewma(Balancer):
    """Lowest decayed response-time average of two random candidates."""

    __slots__ = ("stats", "rand")

    def __init__(self, nodes: list[Any], make_vars: Any = None, health: Any = None):
        super().__init__(nodes, make_vars, health)
        #: id(node) → [ewma seconds, last update time]
        self.stats: dict[int, list[float]] = {id(n): [0.0, 0.0] for n in nodes}
        self.rand = random.Random()

    def score(self, node: Any) -> float:
        value, stamp = self.stats[id(node)]
        if value == 0.0:
            return 0.0
        return value * math.exp(-(clock() - stamp) / EWMA_DECAY)

    def _choose(self, group: list[Any], index: int, ctx: Any, skip: set[int] | None) -> Any:
        pool = group if skip is None else [n for n in group if id(n) not in skip]
        if len(pool) == 1:
            return pool[0]
        a, b = self.rand.sample(pool, 2)
        return a if self.score(a) <= self.score(b) else b

    def done(self, node: Any, latency: float) -> None:
        stat = self.stats.get(id(node))
        if stat is None:
            return
        now = clock()
        w = math.exp(-(now - stat[1]) / EWMA_DECAY) if stat[1] else 0.0
        stat[0] = stat[0] * w + latency * (1.0 - w)
        stat[1] = now

    def failed(self, node: Any) -> None:
        self.done(node, EWMA_FAIL_PENALTY)


class LeastConn(Balancer):
    """Fewest active exchanges per weight unit; :meth:`done`/:meth:`failed` release one.
    Ties rotate (an idle upstream still spreads sequential requests)."""

    __slots__ = ("active", "turn")

    def __init__(self, nodes: list[Any], make_vars: Any = None, health: Any = None):
        super().__init__(nodes, make_vars, health)
        self.active: dict[int, int] = {id(n): 0 for n in nodes}
        self.turn = 0

    def _choose(self, group: list[Any], index: int, ctx: Any, skip: set[int] | None) -> Any:
        active = self.active
        pool = group if skip is None else [n for n in group if id(n) not in skip]
        n = len(pool)
        start = self.turn % n
        self.turn += 1
        best = None
        best_score = 0.0
        for k in range(n):
            node = pool[(start + k) % n]
            score = (active[id(node)] + 1) / node.weight
            if best is None or score < best_score:
                best, best_score = node, score
        active[id(best)] += 1
        return best

    def _release(self, node: Any) -> None:
        key = id(node)
        if self.active.get(key, 0) > 0:
            self.active[key] -= 1

    def done(self, node: Any, latency: float) -> None:
        self._release(node)

    def failed(self, node: Any) -> None:
        self._release(node)


def make_balancer(conf: Mapping[str, Any], nodes: list[Any],
                  make_vars: Callable[[Any], RequestVars] | None = None,
                  health: Any = None) -> Balancer:
    """The balancer for an upstream object's ``type`` (roundrobin when absent), reading
    ``health`` (see :class:`Balancer`) when the upstream has health checks. Raises
    ValueError for an unknown type or a chash without the key it needs."""
    kind = conf.get("type") or "roundrobin"
    if kind == "roundrobin":
        return RoundRobin(nodes, make_vars, health)
    if kind == "chash":
        hash_on = conf.get("hash_on") or "vars"
        key = conf.get("key")
        if hash_on != "consumer" and not key:
            raise ValueError("missing key")
        return ConsistentHash(nodes, make_vars, hash_on, key or "", health)
    if kind == "ewma":
        return Ewma(nodes, make_vars, health)
    if kind == "least_conn":
        return LeastConn(nodes, make_vars, health)
    raise ValueError("unknown balancer type %r (expected one of %s)"
                     % (kind, ", ".join(KINDS)))
