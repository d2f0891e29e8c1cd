"""The plugin registry: which plugin modules exist, which are enabled, and how their confs
are checked. Pure (no network, no gevent): the master, the workers and the Admin API all
import it.

A plugin is a module ``plugins/<name with - as _>.py`` (or the same file name in one of the
directories of ``apisix.extra_plugin_paths``, which are searched first, so a user's module
can replace a bundled one). The ``plugins:`` list of config.yaml enables them; names that
have no module yet are skipped with one warning, so APISIX's default list can be kept whole
while the plugin set grows. A module that is enabled but broken (import error, a missing
required attribute, a schema that is not a schema) stops the load with :class:`PluginError`
naming the plugin and the reason: the node refuses to boot with it, like with a bad config.

The module contract (README "Writing a plugin" shows a whole plugin):

=================  =========================================================================
``NAME``           the plugin's name (``"key-auth"``); must match the enabled name
``PRIORITY``       int; phases run plugins by descending priority (``_meta.priority`` wins)
``VERSION``        APISIX's plugin version (``0.1``)
``SCHEMA``         JSON Schema (draft 7) of the route/service/global-rule conf
optional           ``CONSUMER_SCHEMA``, ``METADATA_SCHEMA``, ``TYPE`` (``"auth"``),
                   ``SCOPE`` (``"global"``), ``ENCRYPT_FIELDS``, ``BLOCKING`` (a phase may
                   wait on I/O; ``blocking(conf)`` may decide per conf),
                   ``check_schema(conf, schema_type) -> str | None`` (rules
                   the schema cannot express, called once the JSON Schema of that type -
                   "schema", "consumer" or "metadata" - passed), ``prepare(conf)`` or
                   ``prepare(conf, metadata)`` (called once per plugin instance when the
                   worker's table is built; ``metadata`` is the plugin's metadata object
                   with its METADATA_SCHEMA defaults, ``{}``-based when none is set; what
                   it returns is what the phase functions get as ``conf``), and the phase
                   functions ``rewrite``, ``access``, ``before_proxy``, ``header_filter``,
                   ``log`` (``(conf, ctx)``) and ``body_filter`` (``(conf, ctx, chunk, eof)``)
auth plugins       ``CONSUMER_KEY`` (the consumer conf field credentials are indexed by)
                   and optional ``prepare_consumer(conf)`` (gateway.worker.consumers)
=================  =========================================================================

Checking a conf fills in the schema's defaults, as APISIX's validator does (the Admin API
stores and returns confs with their defaults). Error messages are APISIX's, word for word,
through the wording layer of :mod:`gateway.core.schemas.messages`.
"""

from __future__ import annotations

import ast
import copy
import importlib
import importlib.util
import inspect
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema

from gateway.core.log import log
from gateway.core.schemas import fastcheck
from gateway.core.schemas.fastcheck import compile_schema
from gateway.core.schemas.messages import translate
from gateway.core.vars import validate_vars

__all__ = ["PluginError", "Plugin", "PluginSet", "load", "reload", "current",
           "module_file", "fill_defaults", "compile_pre_function", "PHASES", "enabled_by",
           "META_SCHEMA", "INJECTED_COMMENT", "node_conf", "plugin_attr"]

#: request-side and response-side phase functions a module may define, in run order
PHASES = ("rewrite", "access", "before_proxy", "header_filter", "body_filter", "log")
REQUIRED = ("NAME", "PRIORITY", "VERSION", "SCHEMA")
SCHEMA_TYPES = ("schema", "consumer", "metadata")
#: the bundled plugins: the ``plugins`` package beside ``gateway``
BUILTIN_DIR = Path(__file__).resolve().parent.parent.parent / "plugins"
#: module names given to plugins loaded from ``apisix.extra_plugin_paths``
EXTRA_PACKAGE = "gateway_extra_plugins"

INJECTED_COMMENT = "this is a mark for our injected plugin schema"
#: APISIX's ``plugin_injected_schema._meta`` (apisix/schema_def.lua), added to every SCHEMA
META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "disable": {"type": "boolean"},
        "error_response": {"oneOf": [{"type": "string"}, {"type": "object"}]},
        "priority": {"description": "priority of plugins by customized order",
                     "type": "integer"},
        "filter": {"description": "filter determines whether the plugin needs to be "
                                  "executed at runtime",
                   "type": "array"},
        "pre_function": {"description": "function to be executed in each phase before "
                                        "execution of plugins. The pre_function will have "
                                        "access to two arguments: `conf` and `ctx`.",
                         "type": "string"},
    },
    "additionalProperties": False,
}
#: what a plugin without METADATA_SCHEMA accepts as metadata (APISIX's injected one)
EMPTY_METADATA_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}

_FORMATS = jsonschema.Draft7Validator.FORMAT_CHECKER
_NOT_YET = object()


class PluginError(Exception):
    """An enabled plugin module that cannot be used; the message names it and says why."""


def module_file(name: str) -> str:
    """``key-auth`` → ``key_auth.py``."""
    return name.replace("-", "_") + ".py"


def fill_defaults(schema: Any, instance: Any) -> None:
    """Set the ``default`` of every absent property, recursively through ``properties``
    and ``items`` (what APISIX's validator does while it checks). In place."""
    if not isinstance(schema, dict):
        return
    if isinstance(instance, dict):
        props = schema.get("properties")
        if isinstance(props, dict):
            for key, sub in props.items():
                if not isinstance(sub, dict):
                    continue
                if key not in instance and "default" in sub:
                    instance[key] = copy.deepcopy(sub["default"])
                if key in instance:
                    fill_defaults(sub, instance[key])
    elif isinstance(instance, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for item in instance:
                fill_defaults(items, item)


def compile_pre_function(source: str) -> str | None:
    """None when ``_meta.pre_function`` is Python source defining a function (it is run
    with ``(conf, ctx)`` before the plugin in each phase), else the reason. Nothing runs."""
    try:
        tree = ast.parse(source, "<_meta.pre_function>")
    except SyntaxError as e:
        return "%s (line %s)" % (e.msg, e.lineno)
    if not any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
               for node in tree.body):
        return "the source must define a function"
    return None


def load_pre_function(source: str) -> Any:
    """The last function ``source`` defines (table build time; validated before)."""
    namespace: dict[str, Any] = {}
    exec(compile(source, "<_meta.pre_function>", "exec"), namespace)  # noqa: S102 - admin-set code
    tree = ast.parse(source)
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    return namespace[names[-1]]


def _validator(schema: dict[str, Any], name: str, path: str,
               attr: str) -> jsonschema.Draft7Validator:
    try:
        jsonschema.Draft7Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise PluginError("plugin %s (%s): %s is not a valid JSON Schema: %s"
                          % (name, path, attr, e.message)) from None
    return jsonschema.Draft7Validator(schema, format_checker=_FORMATS)


class Plugin:
    """One loaded plugin module and what the registry derived from it, once."""

    __slots__ = ("name", "module", "priority", "version", "type", "scope", "blocking",
                 "schema", "consumer_schema", "metadata_schema", "encrypt_fields",
                 "phases", "check_hook", "prepare", "path", "_validators", "blocking_hook",
                 "wants_metadata", "_quick")

    def __init__(self, name: str, module: ModuleType, path: str):
        self.name = name
        self.module = module
        self.path = path
        for attr in REQUIRED:
            if not hasattr(module, attr):
                raise PluginError("plugin %s (%s): missing required attribute %s"
                                  % (name, path, attr))
        if module.NAME != name:
            raise PluginError("plugin %s (%s): NAME is %r, expected %r"
                              % (name, path, module.NAME, name))
        if not isinstance(module.PRIORITY, int) or isinstance(module.PRIORITY, bool):
            raise PluginError("plugin %s (%s): PRIORITY must be an int" % (name, path))
        schema = module.SCHEMA
        if not isinstance(schema, dict):
            raise PluginError("plugin %s (%s): SCHEMA must be a dict" % (name, path))
        self.priority: int = module.PRIORITY
        self.version = module.VERSION
        self.type: str | None = getattr(module, "TYPE", None)
        self.scope: str | None = getattr(module, "SCOPE", None)
        self.blocking = bool(getattr(module, "BLOCKING", False))
        #: optional ``blocking(conf) -> bool``: whether this conf may wait (e.g. only
        #: fault-injection's ``delay`` does); defaults to BLOCKING
        self.blocking_hook = getattr(module, "blocking", None)
        self.encrypt_fields = tuple(getattr(module, "ENCRYPT_FIELDS", ()) or ())
        self.schema = self._inject_meta(schema)
        self.consumer_schema: dict[str, Any] | None = getattr(module, "CONSUMER_SCHEMA", None)
        self.metadata_schema: dict[str, Any] | None = getattr(module, "METADATA_SCHEMA", None)
        self._validators = {"schema": _validator(self.schema, name, path, "SCHEMA")}
        self._validators["consumer"] = (
            _validator(self.consumer_schema, name, path, "CONSUMER_SCHEMA")
            if self.consumer_schema is not None else self._validators["schema"])
        self._validators["metadata"] = _validator(
            self.metadata_schema if self.metadata_schema is not None
            else EMPTY_METADATA_SCHEMA, name, path, "METADATA_SCHEMA")
        #: quick yes/no checks of the same schemas (jsonschema then only explains a "no"),
        #: compiled at first use (all of them up front: ~1 s at start, MBs per process)
        self._quick: dict[str, Any] = {}
        self.phases: dict[str, Any] = {}
        for phase in PHASES:
            fn = getattr(module, phase, None)
            if fn is not None:
                if not callable(fn):
                    raise PluginError("plugin %s (%s): %s is not a function"
                                      % (name, path, phase))
                self.phases[phase] = fn
        self.check_hook = getattr(module, "check_schema", None)
        self.prepare = getattr(module, "prepare", None)
        #: ``prepare(conf, metadata)``: the plugin reads its plugin metadata (table build)
        self.wants_metadata = self.prepare is not None and _positional(self.prepare) >= 2

    def _inject_meta(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The served schema: the module's, plus ``_meta`` and APISIX's ``$comment`` mark
        (a copy: the module's own dict stays as written, so a reload starts clean)."""
        served = copy.deepcopy(schema)
        props = served.setdefault("properties", {})
        if not isinstance(props, dict):
            raise PluginError("plugin %s (%s): SCHEMA.properties must be an object"
                              % (self.name, self.path))
        if "_meta" in props:
            raise PluginError("plugin %s (%s): found forbidden '_meta' field in the schema"
                              % (self.name, self.path))
        props["_meta"] = copy.deepcopy(META_SCHEMA)
        served["$comment"] = INJECTED_COMMENT
        return served

    def schema_for(self, schema_type: str) -> dict[str, Any]:
        if schema_type == "consumer" and self.consumer_schema is not None:
            return self.consumer_schema
        if schema_type == "metadata":
            return self.metadata_schema if self.metadata_schema is not None \
                else EMPTY_METADATA_SCHEMA
        return self.schema

    def check(self, conf: dict[str, Any], schema_type: str = "schema") -> str | None:
        """None when ``conf`` conforms (its defaults are then filled in, in place), else
        the APISIX wording of the first problem (``property "key" is required``)."""
        kind = schema_type if schema_type in self._validators else "schema"
        quick = self._quick.get(kind, _NOT_YET)
        if quick is _NOT_YET:
            quick = compile_schema(self._validators[kind].schema, _FORMATS)
            if fastcheck.enabled():     # (not a None of the master's for its workers)
                self._quick[kind] = quick
        if quick is None or not quick(conf):
            error = next(iter(self._validators[kind].iter_errors(conf)), None)
            if error is not None:
                return translate(error)
        fill_defaults(self.schema_for(schema_type), conf)
        hook = self.check_hook
        if hook is not None:
            try:
                problem = hook(conf, schema_type)
            except (ValueError, TypeError, KeyError) as e:
                problem = str(e) or e.__class__.__name__
            if problem:
                return str(problem)
        return None

    def info(self) -> dict[str, Any]:
        """This plugin in ``GET /apisix/admin/plugins?all=true``."""
        out: dict[str, Any] = {"version": self.version, "priority": self.priority,
                               "schema": self.schema}
        if self.consumer_schema is not None:
            out["consumer_schema"] = self.consumer_schema
        if self.metadata_schema is not None:
            out["metadata_schema"] = self.metadata_schema
        if self.type is not None:
            out["type"] = self.type
        if self.scope is not None:
            out["scope"] = self.scope
        return out

    def __repr__(self) -> str:
        return "Plugin(%s, priority=%d)" % (self.name, self.priority)


def _positional(fn: Any) -> int:
    """How many positional parameters ``fn`` takes (0 when it cannot be inspected)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 0
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _json(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


class PluginSet:
    """The enabled plugins of one load. Immutable once built; a reload makes a new one."""

    def __init__(self, plugins: dict[str, Plugin], search: list[Path], fresh: bool = False):
        self._plugins = plugins
        self._names = sorted(plugins, key=lambda n: (-plugins[n].priority, n))
        #: directories searched for modules (user directories first), for check_metadata
        self._search = search
        self._fresh = fresh
        #: modules found for plugins that are not enabled (plugin metadata may name them)
        self._known: dict[str, Plugin | None] = {}
        #: the worker's table builder keeps compiled instances here between builds
        self.instance_cache: dict[Any, Any] = {}

    # ---- lookups
    def get(self, name: str) -> ModuleType | None:
        plugin = self._plugins.get(name)
        return plugin.module if plugin is not None else None

    def plugin(self, name: str) -> Plugin | None:
        return self._plugins.get(name)

    def names(self) -> list[str]:
        """Enabled names, highest priority first (ties: by name)."""
        return list(self._names)

    def __contains__(self, name: str) -> bool:
        return name in self._plugins

    def __len__(self) -> int:
        return len(self._plugins)

    # ---- checks (Admin API and table build)
    def check_plugin(self, name: str, conf: Any, schema_type: str = "schema") -> str | None:
        """One plugin conf, as APISIX's ``check_single_plugin_schema``."""
        if not isinstance(conf, dict):
            return "invalid plugin conf %s for plugin [%s]" % (_json(conf), name)
        plugin = self._plugins.get(name)
        if plugin is None:
            return "unknown plugin [%s]" % name
        meta = conf.get("_meta")
        disabled = isinstance(meta, dict) and meta.get("disable") is True
        problem = plugin.check(conf, schema_type)
        if problem is not None:
            if not disabled:
                return "failed to check the configuration of plugin %s err: %s" \
                    % (name, problem)
            log.warning("failed to check the configuration of disabled plugin %s, "
                        "accepting it anyway", name)
        if isinstance(meta, dict):
            if meta.get("filter") is not None:
                reason = validate_vars(meta["filter"])
                if reason:
                    return "failed to validate the 'vars' expression: %s" % reason
            source = meta.get("pre_function")
            if isinstance(source, str):
                reason = compile_pre_function(source)
                if reason:
                    return "failed to load _meta.pre_function in plugin %s: %s" \
                        % (name, reason)
        return None

    def check_plugins(self, plugins_map: Any, schema_type: str = "schema") -> str | None:
        """None, or APISIX's error_msg for the first bad entry of a ``plugins`` object
        (``unknown plugin [x]``, ``invalid plugin conf 1 for plugin [x]``, ``failed to
        check the configuration of plugin x err: ...``). Fills defaults in place.
        ``schema_type``: "schema" (routes, services, ...) or "consumer"."""
        if not isinstance(plugins_map, dict):
            return "invalid plugins configuration: expected an object"
        for name, conf in plugins_map.items():
            problem = self.check_plugin(name, conf, schema_type)
            if problem is not None:
                return problem
        return None

    def check_metadata(self, name: str, conf: Any) -> str | None:
        """None, or the error_msg for ``PUT /apisix/admin/plugin_metadata/<name>``:
        ``invalid plugin name`` when no module has that name (enabled or not),
        ``invalid configuration: <reason>`` when ``conf`` breaks its METADATA_SCHEMA."""
        plugin = self._plugins.get(name) or self._module_only(name)
        if plugin is None:
            return "invalid plugin name"
        if not isinstance(conf, dict):
            return "invalid configuration: wrong type: expected object"
        body = {k: v for k, v in conf.items() if k != "id"}
        problem = plugin.check(body, "metadata")
        if problem is not None:
            return "invalid configuration: " + problem
        for key, value in body.items():  # defaults filled in, as APISIX stores them
            conf.setdefault(key, value)
        return None

    def _module_only(self, name: str) -> Plugin | None:
        if name not in self._known:
            try:
                self._known[name] = _load_plugin(name, self._search, self._fresh)
            except PluginError as e:
                log.info("plugin metadata for %s: %s", name, e)
                self._known[name] = None
        return self._known[name]

    # ---- what the Admin API serves
    def describe(self, name: str, schema_type: str = "schema") -> dict[str, Any] | None:
        """The schema ``GET /apisix/admin/plugins/<name>`` answers with (``_meta``
        injected), the consumer schema for ``schema_type=consumer`` (None when the plugin
        has none: APISIX answers 400 "not found schema"), None for an unknown plugin."""
        plugin = self._plugins.get(name)
        if plugin is None:
            return None
        if schema_type == "consumer":
            return plugin.consumer_schema
        if schema_type == "metadata":
            return plugin.metadata_schema
        return plugin.schema

    def all_info(self) -> dict[str, dict[str, Any]]:
        """``GET /apisix/admin/plugins?all=true``: name → version, priority, schema, and
        consumer_schema/metadata_schema/type/scope when the plugin has them."""
        return {name: self._plugins[name].info() for name in self._names}


# --------------------------------------------------------------------------- loading
def _search_dirs(conf: dict[str, Any], prefix: str | None) -> list[Path]:
    extra = ((conf.get("apisix") or {}).get("extra_plugin_paths")) or []
    dirs = []
    for entry in extra:
        path = Path(entry)
        if not path.is_absolute() and prefix:
            path = Path(prefix) / path
        dirs.append(path)
    dirs.append(BUILTIN_DIR)
    return dirs


def _find(name: str, search: list[Path]) -> Path | None:
    filename = module_file(name)
    for directory in search:
        candidate = directory / filename
        if candidate.is_file():
            return candidate
    return None


def _import(name: str, path: Path, fresh: bool) -> ModuleType:
    """The module in ``path``; bundled ones as ``plugins.<file>`` (re-executed when
    ``fresh``), user ones under :data:`EXTRA_PACKAGE` (always executed anew)."""
    stem = path.stem
    if path.parent.resolve() == BUILTIN_DIR:
        modname = "plugins." + stem
        module = sys.modules.get(modname)
        if module is None:
            return importlib.import_module(modname)
        return importlib.reload(module) if fresh else module
    modname = "%s.%s" % (EXTRA_PACKAGE, stem)
    if modname in sys.modules and not fresh:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise ImportError("cannot load %s" % path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(modname, None)
        raise
    return module


def _load_plugin(name: str, search: list[Path], fresh: bool) -> Plugin | None:
    """The plugin ``name``, None when no module has that name; PluginError when broken."""
    path = _find(name, search)
    if path is None:
        return None
    try:
        module = _import(name, path, fresh)
    except Exception as e:  # noqa: BLE001 - any import failure is the plugin's fault
        raise PluginError("plugin %s (%s): failed to load: %s: %s"
                          % (name, path, e.__class__.__name__, e)) from None
    return Plugin(name, module, str(path))


_current: PluginSet | None = None
#: the node's config.yaml as the last load() saw it (plugin_attr, apisix.ssl...)
_node_conf: dict[str, Any] = {}


def node_conf() -> dict[str, Any]:
    """The node's settings (config.yaml merged with the defaults), for plugins that read
    node-level settings such as ``plugin_attr.<name>`` when their confs are prepared."""
    return _node_conf


def plugin_attr(name: str) -> dict[str, Any]:
    """``plugin_attr.<name>`` of config.yaml ({} when unset)."""
    return ((_node_conf.get("plugin_attr") or {}).get(name)) or {}


def load(conf: dict[str, Any], prefix: str | None = None, fresh: bool = False,
         warn_missing: bool = True) -> PluginSet:
    """The enabled plugins of ``conf`` (its ``plugins:`` list). Raises PluginError for a
    broken module; names without a module are skipped with one warning (unless
    ``warn_missing`` is false: the CLI's check). ``prefix`` anchors relative
    ``apisix.extra_plugin_paths``."""
    global _current, _node_conf
    _node_conf = conf
    search = _search_dirs(conf, prefix)
    enabled = conf.get("plugins") or []
    plugins: dict[str, Plugin] = {}
    missing: list[str] = []
    for name in enabled:
        if not isinstance(name, str) or name in plugins:
            continue
        plugin = _load_plugin(name, search, fresh)
        if plugin is None:
            missing.append(name)
        else:
            plugins[name] = plugin
    if missing and warn_missing:
        log.warning("plugins enabled in config.yaml without a module yet, skipped: %s",
                    ", ".join(missing))
    _current = PluginSet(plugins, search, fresh)
    return _current


def reload(conf: dict[str, Any], prefix: str | None = None) -> PluginSet:
    """``PUT /apisix/admin/plugins/reload``: re-import every enabled module from its file
    (a new or edited plugin takes effect) and return the new set. On PluginError the
    caller keeps the old set."""
    for modname in [m for m in sys.modules if m.startswith(EXTRA_PACKAGE + ".")]:
        del sys.modules[modname]
    return load(conf, prefix, fresh=True)


def current() -> PluginSet | None:
    """The set of the last :func:`load`/:func:`reload` in this process."""
    return _current


#: the sets of :func:`enabled_by`, by (base set, names): their compiled-instance caches
#: live on them, so an unchanged list keeps its instances from one build to the next
_override_sets: dict[tuple[int, tuple[str, ...]], PluginSet] = {}


def enabled_by(names: list[str], base: PluginSet | None = None) -> PluginSet:
    """Standalone ``apisix.yaml``'s top-level ``plugins:`` list (spec §5.4): a set with
    exactly these plugins enabled, in place of config.yaml's. The base set's modules are
    reused; other names are looked up in the same directories (a name without a module,
    or a broken one, is skipped with an error log line)."""
    base = base if base is not None else (_current or PluginSet({}, []))
    key = (id(base), tuple(names))
    found = _override_sets.get(key)
    if found is not None:
        return found
    plugins: dict[str, Plugin] = {}
    for name in names:
        if name in plugins:
            continue
        plugin = base.plugin(name)
        if plugin is None:
            try:
                plugin = base._module_only(name)
            except PluginError as e:  # pragma: no cover - _module_only logs and maps to None
                log.error("%s", e)
                plugin = None
        if plugin is None:
            log.error("apisix.yaml plugins: no usable module for plugin %s, skipped", name)
            continue
        plugins[name] = plugin
    found = PluginSet(plugins, base._search, base._fresh)
    if len(_override_sets) > 8:
        _override_sets.clear()
    _override_sets[key] = found
    return found
