"""Consumers in the data plane: who a credential belongs to, and what their plugins add.

Built with the worker's table (never per request), from ``/apisix/consumers/<username>``,
``/apisix/consumers/<username>/credentials/<id>`` and ``/apisix/consumer_groups/<id>``:

- per auth plugin, the credential's key value (key-auth ``key``, basic-auth ``username``,
  jwt-auth ``key``, hmac-auth ``key_id``: the module's ``CONSUMER_KEY``) → an
  :class:`Identity` (the consumer, the credential id when it came from a credential, the
  auth conf decrypted, defaults filled and passed through the module's optional
  ``prepare_consumer(conf)``, and the identity headers ready as bytes). A lookup is a dict
  get. Duplicates: the last one loaded wins, as in APISIX (the Admin API refuses them).
- consumer and consumer-group plugins (auth plugins excepted: they are credentials, not
  route plugins) compiled once into instances; the merge over a route's chain (spec §3.2:
  consumer > consumer group > route) is computed on the first request of a (route,
  consumer) pair and cached in the index, so later requests only swap ``ctx.chain``.

Request side, for auth plugins (see plugins/key_auth.py for a complete one):
``find(ctx, plugin, key)``, ``anonymous(ctx, plugin, conf)``, ``attach(ctx, identity)``,
``remove_query_arg``, ``query_arg``. The runner
calls :func:`strip_identity` before the rewrite phase of every chain with an auth plugin
(a client must not be able to name itself to the upstream) and :func:`consumer_chain` after
it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote_plus

from gateway.core.log import log
from gateway.worker.plugin_chain import Chain, ChainBuilder, Instance

__all__ = ["CONSUMERS", "CONSUMER_GROUPS", "Consumer", "Identity", "ConsumerIndex",
           "GROUP_MISSING", "find", "anonymous", "attach", "strip_identity",
           "consumer_chain", "query_arg", "remove_query_arg", "realm_schema",
           "ANONYMOUS_CONSUMER_SCHEMA"]

CONSUMERS = "/apisix/consumers/"
CONSUMER_GROUPS = "/apisix/consumer_groups/"
#: headers only the gateway may set on the way to the upstream
IDENTITY_HEADERS = frozenset((b"x-consumer-username", b"x-credential-identifier",
                              b"x-consumer-custom-id"))
#: merged chains kept per index before the cache starts over (APISIX's lrucache bound)
MERGED_MAX = 4096
#: consumer_chain's answer when the consumer's group does not exist (the request gets 503)
GROUP_MISSING = object()


class Consumer:
    """A consumer object, compiled: its identity and its (non-auth) plugin instances."""

    __slots__ = ("username", "group_id", "custom_id", "labels", "instances",
                 "group_instances", "group_missing", "merges")

    def __init__(self, username: str, value: Mapping[str, Any]):
        self.username = username
        group_id = value.get("group_id")
        self.group_id: str | None = str(group_id) if group_id is not None else None
        labels = value.get("labels")
        self.labels: Mapping[str, Any] = labels if isinstance(labels, Mapping) else {}
        custom_id = self.labels.get("custom_id")
        self.custom_id: str | None = str(custom_id) if custom_id is not None else None
        self.instances: tuple[Instance, ...] = ()
        self.group_instances: tuple[Instance, ...] = ()
        self.group_missing = False
        #: a route's chain changes once this consumer is attached
        self.merges = False


class Identity:
    """What an auth plugin finds by a credential: ``ctx.consumer`` once attached."""

    __slots__ = ("consumer", "username", "group_id", "custom_id", "credential_id", "conf",
                 "headers", "flat")

    def __init__(self, consumer: Consumer, credential_id: str | None, conf: Any):
        self.consumer = consumer
        self.username = consumer.username
        self.group_id = consumer.group_id
        self.custom_id = consumer.custom_id
        self.credential_id = credential_id
        #: the plugin's consumer conf (decrypted, defaults filled, prepared)
        self.conf = conf
        headers = [(b"X-Consumer-Username", consumer.username.encode("latin-1", "replace"))]
        if credential_id is not None:
            headers.append((b"X-Credential-Identifier",
                            credential_id.encode("latin-1", "replace")))
        if consumer.custom_id is not None:
            headers.append((b"X-Consumer-Custom-ID",
                            consumer.custom_id.encode("latin-1", "replace")))
        self.headers = tuple(headers)
        #: the same as ``[name, ": ", value, CRLF, ...]``, appended to a request as it is
        self.flat = [x for name, value in headers for x in (name, b": ", value, b"\r\n")]

    @property
    def consumer_name(self) -> str:
        return self.username

    def __repr__(self) -> str:  # never the conf: it holds the secret
        return "Identity(%s, credential=%s)" % (self.username, self.credential_id)


class ConsumerIndex:
    """Every consumer of one table build, and the per-plugin credential maps."""

    __slots__ = ("consumers", "by_plugin", "blocking", "merged")

    def __init__(self) -> None:
        #: username → the consumer's own Identity (no credential): anonymous_consumer
        self.consumers: dict[str, Identity] = {}
        #: auth plugin name → key value → Identity
        self.by_plugin: dict[str, dict[str, Identity]] = {}
        #: a consumer or group plugin may wait on I/O (auth chains then run parked)
        self.blocking = False
        #: (route chain, Consumer) → merged chain, filled by the first request of a pair
        self.merged: dict[tuple[Chain, Consumer], Chain] = {}

    @classmethod
    def build(cls, consumers: Mapping[str, Any], groups: Mapping[str, Any],
              chains: ChainBuilder, pause: Callable[[], None] | None = None,
              ) -> ConsumerIndex:
        """``consumers``: snapshot keys under /apisix/consumers/ → values (consumers and
        credentials); ``groups``: group id → value. Bad objects are logged and skipped."""
        index = cls()
        group_instances: dict[str, tuple[Instance, ...]] = {}
        for gid, value in groups.items():
            if not isinstance(value, Mapping):
                continue
            try:
                group_instances[gid] = tuple(chains.instances(
                    _route_plugins(chains, value.get("plugins")), CONSUMER_GROUPS + gid))
            except Exception as e:  # noqa: BLE001 - a bad object must not stop the build
                log.error("skipping %s%s: invalid consumer group: %s", CONSUMER_GROUPS, gid, e)
                group_instances[gid] = ()
            index.blocking = index.blocking or any(i.blocking for i in group_instances[gid])

        owners: dict[str, Consumer] = {}
        credentials: list[tuple[str, str, str, Any]] = []
        for count, key in enumerate(sorted(consumers), 1):
            if pause is not None and count % 500 == 0:
                pause()
            value = consumers.get(key)
            if not isinstance(value, Mapping):
                continue
            parts = key[len(CONSUMERS):].split("/")
            if len(parts) == 3 and parts[1] == "credentials" and parts[2]:
                credentials.append((key, parts[0], parts[2], value))
                continue
            if len(parts) != 1 or not parts[0]:
                continue
            username = str(value.get("username") or parts[0])
            try:
                consumer = Consumer(username, value)
                consumer.instances = tuple(chains.instances(
                    _route_plugins(chains, value.get("plugins")), key))
                if consumer.group_id is not None:
                    found = group_instances.get(consumer.group_id)
                    if found is None:
                        consumer.group_missing = True
                    else:
                        consumer.group_instances = found
                consumer.merges = bool(consumer.instances or consumer.group_instances
                                       or consumer.group_missing)
                own = index._auth_entries(chains, key, consumer, None, value.get("plugins"))
            except Exception as e:  # noqa: BLE001
                log.error("skipping %s: invalid consumer: %s", key, e)
                continue
            index.blocking = index.blocking or any(i.blocking for i in consumer.instances)
            owners[parts[0]] = consumer
            index.consumers[username] = Identity(consumer, None, None)
            index._add(own)
        for key, owner, credential_id, value in credentials:
            consumer = owners.get(owner)
            if consumer is None:
                log.error("skipping %s: failed to get the consumer for the credential, "
                          "a wild credential has appeared!", key)
                continue
            try:
                index._add(index._auth_entries(chains, key, consumer, credential_id,
                                               value.get("plugins")))
            except Exception as e:  # noqa: BLE001
                log.error("skipping %s: invalid credential: %s", key, e)
        return index

    def _auth_entries(self, chains: ChainBuilder, key: str, consumer: Consumer,
                      credential_id: str | None, plugins: Any,
                      ) -> list[tuple[str, str, Identity]]:
        """(plugin, key value, Identity) for the auth plugins of a consumer/credential;
        raises ValueError (APISIX's words) for an invalid conf."""
        out: list[tuple[str, str, Identity]] = []
        if not isinstance(plugins, Mapping):
            return out
        registry = chains.registry
        for name, conf in plugins.items():
            plugin = registry.plugin(name)
            if plugin is None or plugin.type != "auth" or not isinstance(conf, Mapping):
                continue
            value, prepared = _auth_conf(chains, plugin, conf)
            if not isinstance(value, str):
                log.error("missing consumer auth credential '%s', skipping consumer: %s "
                          "(%s)", getattr(plugin.module, "CONSUMER_KEY", None),
                          consumer.username, key)
                continue
            out.append((name, value, Identity(consumer, credential_id, prepared)))
        return out

    def _add(self, entries: list[tuple[str, str, Identity]]) -> None:
        for name, value, identity in entries:
            self.by_plugin.setdefault(name, {})[value] = identity


def _route_plugins(chains: ChainBuilder, plugins: Any) -> dict[str, Any]:
    """A consumer's (or group's) plugins minus the auth ones: what merges into routes."""
    if not isinstance(plugins, Mapping):
        return {}
    registry = chains.registry
    out = {}
    for name, conf in plugins.items():
        plugin = registry.plugin(name)
        if plugin is not None and plugin.type == "auth":
            continue
        out[name] = conf
    return out


def _auth_conf(chains: ChainBuilder, plugin: Any, conf: Mapping[str, Any]) -> tuple[Any, Any]:
    """(the credential value, the conf the plugin gets) for the consumer conf of an auth
    plugin: decrypted, checked (defaults filled), through ``prepare_consumer``. Cached
    between builds like route instances (by plugin and stored JSON), so a config change
    does not re-parse every consumer's keys."""
    try:
        key = ("consumer:" + plugin.name,
               json.dumps(conf, sort_keys=True, separators=(",", ":")))
    except (TypeError, ValueError):
        key = None
    if key is not None:
        hit = chains.cache.get(key) or chains.previous.get(key)
        if hit is not None:
            chains.cache[key] = hit
            return hit
    plain = chains.decrypted(plugin, copy.deepcopy(dict(conf)))
    problem = chains.registry.check_plugin(plugin.name, plain, "consumer")
    if problem is not None:
        raise ValueError(problem)
    attr = getattr(plugin.module, "CONSUMER_KEY", None)
    hook = getattr(plugin.module, "prepare_consumer", None)
    result = (plain.get(attr) if attr else None, hook(plain) if hook is not None else plain)
    if key is not None:
        chains.cache[key] = result
    return result


# --------------------------------------------------------------------------- request side
def find(ctx: Any, plugin: str, key: str) -> Identity | None:
    """The identity whose ``plugin`` credential is ``key`` (one dict get), or None."""
    index = ctx.chain.consumers
    if index is None:
        return None
    table = index.by_plugin.get(plugin)
    return table.get(key) if table is not None else None


def anonymous(ctx: Any, plugin: str, name: str) -> Identity | None:
    """The consumer named by ``anonymous_consumer``, or None (logged as APISIX does)."""
    index = ctx.chain.consumers
    found = index.consumers.get(name) if index is not None else None
    if found is None:
        log.error("%s failed to authenticate the request, code: 401. error: failed to get "
                  "anonymous consumer %s", plugin, name)
    return found


def attach(ctx: Any, identity: Identity) -> None:
    """The request is ``identity``'s: ``ctx.consumer``, the ``consumer_name`` /
    ``consumer_group_id`` vars, and the identity headers to the upstream (replacing any
    the client sent)."""
    if ctx.consumer is None:
        # the first identity: the runner stripped the client's identity headers already
        ctx.consumer = identity
        ctx.append_headers(identity.flat)
    else:
        ctx.consumer = identity
        ctx.edit_headers(IDENTITY_HEADERS, identity.headers)
    v = ctx._vars  # created before this: keep it in step
    if v is not None and v.extra is not None:
        v.extra["consumer_name"] = identity.username
        v.extra["consumer_group_id"] = identity.group_id


def strip_identity(ctx: Any) -> None:
    """Drop identity headers the client sent (the runner, before any rewrite, on every
    chain that has an auth plugin)."""
    if ctx.req.ident:  # (the parser flags a request carrying one)
        ctx.edit_headers(IDENTITY_HEADERS, ())


def consumer_chain(chain: Chain, identity: Identity) -> Any:
    """The chain a request continues with once ``identity`` is attached: None when the
    consumer and its group add nothing, :data:`GROUP_MISSING`, or the merged chain (its
    ``consumer_rewrite`` entries are the rewrite phases of the plugins it added)."""
    consumer = identity.consumer
    if not consumer.merges:
        return None
    if consumer.group_missing:
        log.error("failed to fetch consumer group config by id: %s", consumer.group_id)
        return GROUP_MISSING
    index = chain.consumers
    if index is None:
        return None
    key = (chain, consumer)
    merged = index.merged.get(key)
    if merged is None:
        merged = _merge(chain, consumer)
        if len(index.merged) >= MERGED_MAX:
            index.merged.clear()
        index.merged[key] = merged
    return merged


class ConsumerChain(Chain):
    """A route's chain with a consumer's and its group's plugins merged in."""

    __slots__ = ("consumer_rewrite",)


def _merge(chain: Chain, consumer: Consumer) -> ConsumerChain:
    by_name = {inst.name: inst for inst in chain.route_instances}
    route_names = frozenset(by_name)
    for inst in consumer.group_instances:
        by_name[inst.name] = inst
    for inst in consumer.instances:
        by_name[inst.name] = inst
    instances = sorted(by_name.values(), key=lambda i: (-i.priority, i.name))
    merged = ConsumerChain(chain.route_id, instances, list(chain.global_instances))
    merged.consumers = chain.consumers
    merged.blocking = merged.blocking or chain.blocking
    merged.consumer_rewrite = tuple(
        (inst.plugin.phases["rewrite"], inst) for inst in instances
        if inst.name not in route_names and inst.plugin.type != "auth"
        and "rewrite" in inst.plugin.phases)
    return merged


# --------------------------------------------------------------------------- helpers
#: APISIX's ``realm`` (schema_def.get_realm_schema): printable ASCII without ``"`` and ``\\``
REALM_PATTERN = "^[\\x20-\\x21\\x23-\\x5B\\]-\\x7E]+$"
#: APISIX's ``anonymous_consumer`` (schema_def.anonymous_consumer_schema)
ANONYMOUS_CONSUMER_SCHEMA = {"type": "string", "minLength": 1}


def realm_schema(default: str) -> dict[str, Any]:
    return {"type": "string", "pattern": REALM_PATTERN, "default": default,
            "minLength": 1, "maxLength": 128}


def query_arg(ctx: Any, name: str) -> str | None:
    """The first value of query argument ``name`` (exact name, URL-decoded), or None."""
    query = ctx.args
    if not query:
        return None
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        if unquote_plus(key) == name:
            return unquote_plus(value) if eq else ""
    return None


def remove_query_arg(ctx: Any, name: str) -> None:
    """Send the upstream the request target without query argument ``name``."""
    req = ctx.req
    target = ctx.up_uri if ctx.up_uri is not None else (req.url or req.path)
    path, sep, query = target.partition(b"?")
    if not sep:
        return
    kept = [p for p in query.split(b"&")
            if p and unquote_plus(p.split(b"=", 1)[0].decode("latin-1")) != name]
    ctx.set_uri(path + (b"?" + b"&".join(kept) if kept else b""))
