"""Compiling a route's plugins into the per-phase lists the runner walks (table build time).

A :class:`Chain` holds, for each phase, a tuple of ``(phase function, Instance)`` already in
run order, so a request pays only for the phases that have work, and a route without any
plugin (and no global rule) gets no chain at all: its requests never touch plugin code.

What is decided here, once per snapshot and never per request (DESIGN.md hot path rules):
the merge of service, plugin_config and route plugins (spec §3.2: route > plugin_config >
service), each conf's validation with its defaults filled in (an invalid conf skips the
route, as APISIX's config check does; an unknown or disabled plugin is skipped), the
module's ``prepare(conf)`` (or ``prepare(conf, metadata)``: the plugin's metadata object,
``/apisix/plugin_metadata/<name>``, checked once per build with its defaults filled in),
``_meta.priority`` ordering, the ``_meta.filter`` predicate, the
``_meta.pre_function`` function and the rendered ``_meta.error_response`` body.

Compiled instances are cached between builds by (plugin, conf JSON, and the metadata JSON
for plugins that read it): a config change recompiles only the confs that changed, and a
metadata change recompiles that plugin's instances, without touching routes.

A plugin named in two or more global rules is dropped from all of them, with an error log
line (APISIX's ``merge_global_rules``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from gateway.core.log import log
from gateway.core.plugins import Plugin, PluginSet, load_pre_function
from gateway.core.vars import compile_vars

__all__ = ["Instance", "Chain", "ChainBuilder", "render_body"]


def render_body(body: Any) -> bytes | None:
    """A phase's exit body as bytes: dict/list → JSON + ``\\n`` (as APISIX), str → UTF-8,
    None → None (the gateway's page for the status)."""
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


class Instance:
    """One plugin conf on a route, service or global rule, ready to run."""

    __slots__ = ("name", "plugin", "conf", "priority", "filter", "pre", "error_response",
                 "blocking")

    def __init__(self, plugin: Plugin, conf: dict[str, Any],
                 metadata: dict[str, Any] | None = None):
        self.name = plugin.name
        self.plugin = plugin
        meta = conf.get("_meta") if isinstance(conf.get("_meta"), dict) else {}
        priority = meta.get("priority")
        self.priority: int = priority if isinstance(priority, int) else plugin.priority
        self.filter = compile_vars(meta["filter"]) if meta.get("filter") else None
        self.pre = load_pre_function(meta["pre_function"]) \
            if isinstance(meta.get("pre_function"), str) else None
        error_response = meta.get("error_response")
        #: replaces the body of this plugin's exits with a status >= 400
        self.error_response = render_body(error_response) \
            if error_response is not None else None
        self.blocking = bool(plugin.blocking_hook(conf)) if plugin.blocking_hook is not None \
            else plugin.blocking
        #: what the phase functions get: ``prepare(conf)`` or the conf with its defaults
        if plugin.prepare is None:
            self.conf = conf
        elif plugin.wants_metadata:
            self.conf = plugin.prepare(conf, metadata if metadata is not None else {})
        else:
            self.conf = plugin.prepare(conf)

    def __repr__(self) -> str:
        return "Instance(%s, priority=%d)" % (self.name, self.priority)


Entry = tuple  # (phase function, Instance)


class Chain:
    """The plugins of one route (global rules included), per phase, in run order."""

    __slots__ = ("route_id", "g_rewrite", "rewrite", "g_access", "access", "before_proxy",
                 "header_filter", "body_filter", "log", "blocking", "blocking_log",
                 "response", "route_instances", "global_instances", "auth", "consumers")

    def __init__(self, route_id: str | None, route: list[Instance],
                 globals_: list[Instance]):
        self.route_id = route_id
        #: the route's own instances (for the consumer merge that comes with auth plugins)
        self.route_instances = tuple(route)
        self.global_instances = tuple(globals_)
        #: an auth plugin runs here: client-sent identity headers are stripped first
        self.auth = any(i.plugin.type == "auth" for i in self.route_instances) \
            or any(i.plugin.type == "auth" for i in self.global_instances)
        #: the table's ConsumerIndex (gateway.worker.consumers), set by the builder
        self.consumers: Any = None

        def phase(instances: list[Instance], name: str) -> tuple[Entry, ...]:
            # a prepared conf may narrow its phases (``.phases``: serverless functions)
            return tuple((i.plugin.phases[name], i) for i in instances
                         if name in i.plugin.phases
                         and name in getattr(i.conf, "phases", (name,)))
        self.g_rewrite = phase(globals_, "rewrite")
        self.rewrite = phase(route, "rewrite")
        self.g_access = phase(globals_, "access")
        self.access = phase(route, "access")
        both = globals_ + route
        self.before_proxy = phase(both, "before_proxy")
        self.header_filter = phase(both, "header_filter")
        self.body_filter = phase(both, "body_filter")
        self.log = phase(both, "log")
        request_side = (self.g_rewrite, self.rewrite, self.g_access, self.access,
                        self.before_proxy)
        #: a request-side phase may wait on I/O: run the chain on a parked greenlet
        self.blocking = any(i.blocking for entries in request_side for _, i in entries)
        self.blocking_log = any(i.blocking for _, i in self.log)
        #: the upstream response goes through plugins (header_filter / body_filter)
        self.response = bool(self.header_filter or self.body_filter)

    @property
    def empty(self) -> bool:
        return not (self.g_rewrite or self.rewrite or self.g_access or self.access
                    or self.before_proxy or self.header_filter or self.body_filter
                    or self.log)


def _sort(instances: list[Instance]) -> list[Instance]:
    return sorted(instances, key=lambda i: (-i.priority, i.name))


class ChainBuilder:
    """Used by one table build: compiles plugin maps with the registry, reusing the
    instances of the previous build for unchanged confs."""

    __slots__ = ("registry", "previous", "cache", "_globals", "_pending", "decrypt",
                 "consumers", "metadata", "_metadata_json")

    def __init__(self, registry: PluginSet, decrypt: Any = None):
        self.registry = registry
        self.previous: dict[Any, Any] = registry.instance_cache
        self.cache: dict[Any, Any] = {}
        #: global rules' instances (rule order, then priority), compiled on first use
        self._globals: list[Instance] | None = None
        #: (key, rule) of the global rules added, compiled together (duplicates dropped)
        self._pending: list[tuple[str, Any]] = []
        #: plugin name -> its metadata with defaults (the defaults alone when none is set)
        self.metadata: dict[str, dict[str, Any]] = {}
        self._metadata_json: dict[str, str] = {}
        #: str -> str for the plugins' ENCRYPT_FIELDS (the keyring's), None: stored plain
        self.decrypt = decrypt
        #: the consumers of this build (gateway.worker.consumers.ConsumerIndex)
        self.consumers: Any = None

    def decrypted(self, plugin: Plugin, conf: dict[str, Any]) -> dict[str, Any]:
        """``conf`` with the plugin's ENCRYPT_FIELDS (``a`` or ``a.b``) decrypted, in
        place: the one place the data plane reads secrets the Admin API encrypted."""
        decrypt = self.decrypt
        if decrypt is None or not plugin.encrypt_fields:
            return conf
        for path in plugin.encrypt_fields:
            holder: Any = conf
            leaf = path
            if "." in path:
                head, leaf = path.split(".", 1)
                holder = conf.get(head)
            if isinstance(holder, dict) and isinstance(holder.get(leaf), str):
                holder[leaf] = decrypt(holder[leaf])
        return conf

    def add_metadata(self, key: str, name: str, value: Any) -> None:
        """``/apisix/plugin_metadata/<name>``: checked against the plugin's METADATA_SCHEMA
        (defaults filled in) before any instance is compiled; an invalid object is logged
        and ignored (the plugin then sees its defaults)."""
        plugin = self.registry.plugin(name)
        if plugin is None or not isinstance(value, Mapping):
            return
        conf = {k: copy.deepcopy(v) for k, v in value.items() if k != "id"}
        problem = plugin.check(conf, "metadata")
        if problem is not None:
            log.error("skipping %s: invalid plugin metadata: %s", key, problem)
            return
        self.metadata[name] = conf
        self._metadata_json.pop(name, None)

    def metadata_of(self, plugin: Plugin) -> dict[str, Any]:
        """What ``prepare(conf, metadata)`` gets: the object, or the schema's defaults."""
        found = self.metadata.get(plugin.name)
        if found is None:
            found = {}
            if plugin.check(found, "metadata") is not None:
                found = {}
            self.metadata[plugin.name] = found
        return found

    def _metadata_key(self, plugin: Plugin) -> str:
        text = self._metadata_json.get(plugin.name)
        if text is None:
            try:
                text = json.dumps(self.metadata_of(plugin), sort_keys=True,
                                  separators=(",", ":"))
            except (TypeError, ValueError):
                text = repr(self.metadata_of(plugin))
            self._metadata_json[plugin.name] = text
        return text

    def finish(self) -> None:
        """Keep only what this build used for the next one."""
        self.registry.instance_cache = self.cache

    def instances(self, plugins: Any, owner: str) -> list[Instance]:
        """A ``plugins`` object → its enabled instances, sorted. Raises ValueError with
        APISIX's message for an invalid conf (the owner is then skipped)."""
        if not isinstance(plugins, Mapping):
            return []
        out = []
        for name, conf in plugins.items():
            inst = self.instance(name, conf, owner)
            if inst is not None:
                out.append(inst)
        return _sort(out)

    def instance(self, name: str, conf: Any, owner: str) -> Instance | None:
        plugin = self.registry.plugin(name)
        try:
            key = (name, json.dumps(conf, sort_keys=True, separators=(",", ":")),
                   self._metadata_key(plugin)
                   if plugin is not None and plugin.wants_metadata else None)
        except (TypeError, ValueError):
            key = None
        if key is not None:
            hit = self.cache.get(key)
            if hit is None:
                hit = self.previous.get(key)
            if hit is not None:
                self.cache[key] = hit
                return hit[0]
        if plugin is None:
            log.warning("%s: plugin %s is not enabled (or has no module), skipped",
                        owner, name)
            result: tuple[Instance | None] = (None,)
        else:
            if isinstance(conf, Mapping):
                conf = self.decrypted(plugin, copy.deepcopy(dict(conf)))
            problem = self.registry.check_plugin(name, conf)
            if problem is not None:
                raise ValueError(problem)
            meta = conf.get("_meta")
            if isinstance(meta, dict) and meta.get("disable") is True:
                result = (None,)
            else:
                result = (Instance(plugin, conf, self.metadata_of(plugin)
                                   if plugin.wants_metadata else None),)
        if key is not None:
            self.cache[key] = result
        return result[0]

    def add_global_rule(self, key: str, rule: Any) -> None:
        """A global rule's plugins join every chain (skipped whole when invalid). Compiled
        with the others on first use, so that metadata added later in the build counts."""
        if isinstance(rule, Mapping):
            self._pending.append((key, rule))
            self._globals = None

    @property
    def globals(self) -> list[Instance]:
        if self._globals is None:
            self._globals = self._compile_globals()
        return self._globals

    def _compile_globals(self) -> list[Instance]:
        seen: dict[str, int] = {}
        for _key, rule in self._pending:
            plugins = rule.get("plugins")
            if isinstance(plugins, Mapping):
                for name in plugins:
                    seen[name] = seen.get(name, 0) + 1
        dropped = {name for name, n in seen.items() if n > 1}
        for name in sorted(dropped):
            log.error("Found %s configured across different global rules. Removing it "
                      "from execution list", name)
        out: list[Instance] = []
        for key, rule in self._pending:
            plugins = rule.get("plugins")
            if dropped and isinstance(plugins, Mapping):
                plugins = {k: v for k, v in plugins.items() if k not in dropped}
            try:
                out.extend(self.instances(plugins, key))
            except Exception as e:  # noqa: BLE001 - a bad object must not stop the build
                log.error("skipping %s: invalid global rule: %s", key, e)
        return out

    def chain(self, route_id: str | None, plugins: Any, owner: str) -> Chain | None:
        """The chain of a route whose merged plugins are ``plugins``; None when neither it
        nor the global rules have anything to run (the route then costs nothing)."""
        route = self.instances(plugins, owner) if plugins else []
        if not route and not self.globals:
            return None
        chain = Chain(route_id, route, self.globals)
        if chain.empty:
            return None
        if chain.auth and self.consumers is not None:
            chain.consumers = self.consumers
            if self.consumers.blocking:
                chain.blocking = True  # a consumer's plugins may wait once merged in
        return chain


def merge_plugins(service: Mapping[str, Any] | None, plugin_config: Mapping[str, Any] | None,
                  route: Mapping[str, Any]) -> Any:
    """Route plugins over plugin_config's over service's (spec §3.2); the route's own map
    (no copy) when nothing is merged into it."""
    own = route.get("plugins")
    layers = [layer.get("plugins") for layer in (service, plugin_config)
              if isinstance(layer, Mapping) and isinstance(layer.get("plugins"), Mapping)]
    if not layers:
        return own
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    if isinstance(own, Mapping):
        merged.update(own)
    return merged
