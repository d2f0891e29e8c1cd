"""Redis clients for the limit plugins' ``redis`` and ``redis-cluster`` policies.

Workers are not monkey-patched (the hot path runs on raw loop watchers), so redis-py's
sockets would block the whole event loop. This module points redis-py's connection code at
gevent's cooperative socket module (only redis-py's: nothing else in the process changes),
so a Redis call waits on the hub like any gevent socket. Calls must still come from a
greenlet other than the hub: plugins that use Redis declare BLOCKING for those confs, and
their chains run on the runner's parked greenlets.

Connections are pooled per worker and per server identity (scheme, host, port, database,
credentials digest), like APISIX's keepalive pools; redis-py's pools notice a fork and start
over in the child. Connect and read timeouts come from the conf (``redis_timeout`` ms).
"""

from __future__ import annotations

import hashlib
import socket as _stdsocket
import types
from typing import Any

import gevent.socket
import gevent.ssl
import redis
import redis.cluster
import redis.connection
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["RedisError", "client", "cluster_client"]

RedisError = (redis.RedisError, OSError)


class _CooperativeSocket(types.ModuleType):
    """gevent's socket module, with the stdlib's for the few names gevent lacks."""

    def __getattr__(self, name: str) -> Any:
        try:
            return getattr(gevent.socket, name)
        except AttributeError:
            return getattr(_stdsocket, name)


redis.connection.socket = _CooperativeSocket("socket")   # type: ignore[attr-defined]
redis.connection.ssl = gevent.ssl                       # type: ignore[attr-defined]

_pools: dict[tuple, Any] = {}


def _no_retry() -> Retry:
    """One try per call: ``redis_timeout`` bounds a request's wait, as in APISIX (redis-py
    retries timeouts three times with backoff by default)."""
    return Retry(NoBackoff(), 0)


def _digest(username: Any, password: Any) -> str:
    if not password:
        return ""
    return hashlib.sha1(("%s:%s" % (username or "", password)).encode()).hexdigest()[:16]


def client(conf: dict[str, Any]) -> redis.Redis:
    """A client of the worker's pool for ``conf``'s ``redis_*`` settings."""
    ssl = bool(conf.get("redis_ssl"))
    key = ("redis", ssl, bool(conf.get("redis_ssl_verify")), conf["redis_host"],
           conf.get("redis_port") or 6379, conf.get("redis_database") or 0,
           conf.get("redis_username"), _digest(conf.get("redis_username"),
                                               conf.get("redis_password")),
           conf.get("redis_timeout") or 1000)
    cli = _pools.get(key)
    if cli is None:
        timeout = (conf.get("redis_timeout") or 1000) / 1000.0
        kwargs: dict[str, Any] = dict(
            host=conf["redis_host"], port=conf.get("redis_port") or 6379,
            db=conf.get("redis_database") or 0, username=conf.get("redis_username"),
            password=conf.get("redis_password") or None, socket_timeout=timeout,
            socket_connect_timeout=timeout, retry=_no_retry(), health_check_interval=0)
        if ssl:
            kwargs["ssl"] = True
            kwargs["ssl_cert_reqs"] = "required" if conf.get("redis_ssl_verify") else "none"
        cli = _pools[key] = redis.Redis(**kwargs)
    return cli


def cluster_client(conf: dict[str, Any]) -> redis.cluster.RedisCluster:
    """A cluster client (one per ``redis_cluster_name`` and node list, per worker)."""
    nodes = tuple(conf["redis_cluster_nodes"])
    key = ("cluster", conf.get("redis_cluster_name"), nodes,
           _digest(None, conf.get("redis_password")), conf.get("redis_timeout") or 1000,
           bool(conf.get("redis_cluster_ssl")))
    cli = _pools.get(key)
    if cli is None:
        timeout = (conf.get("redis_timeout") or 1000) / 1000.0
        startup = []
        for node in nodes:
            host, _, port = node.rpartition(":")
            startup.append(redis.cluster.ClusterNode(host or node, int(port or 6379)))
        kwargs: dict[str, Any] = dict(
            startup_nodes=startup, password=conf.get("redis_password") or None,
            socket_timeout=timeout, socket_connect_timeout=timeout, retry=_no_retry())
        if conf.get("redis_cluster_ssl"):
            kwargs["ssl"] = True
            kwargs["ssl_cert_reqs"] = "required" if conf.get("redis_cluster_ssl_verify") \
                else "none"
        cli = _pools[key] = redis.cluster.RedisCluster(**kwargs)
    return cli
