"""Admin API endpoints that are not stored resources: plugins, schemas, validation.

  GET  /plugins/list[?subsystem=]          enabled plugin names, by priority
  GET  /plugins/{name}[?schema_type=]      a plugin's schema
  GET  /plugins?all=true                   every plugin's description (deprecated in APISIX)
  PUT  /plugins/reload                     re-import plugins in every worker
  GET  /schema/{name}, /schema/plugins/{name}
  POST /schema/validate/{resource}         core schema only
  POST /configs/validate                   a whole declarative config, plugins and ids too
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import yaml

from gateway.admin.api import AdminRequest, Answer, Fail
from gateway.admin.context import AdminContext
from gateway.admin.kinds import check_plugins
from gateway.core import schema as schemas

SUBSYSTEMS = ("http", "stream")

#: `GET /schema/{name}` names → kinds
SCHEMA_NAMES = {"route": "routes", "service": "services", "upstream": "upstreams",
                "consumer": "consumers", "credential": "credentials", "ssl": "ssls",
                "global_rule": "global_rules", "plugin_config": "plugin_configs",
                "consumer_group": "consumer_groups", "stream_route": "stream_routes",
                "proto": "protos", "plugin_metadata": "plugin_metadata"}


def _registry(ctx: AdminContext) -> Any:
    if ctx.plugins is None:
        raise Fail(503, "plugins are not available")
    return ctx.plugins


def _subsystem(req: AdminRequest, message: str) -> str:
    subsystem = req.args.get("subsystem") or "http"
    if subsystem not in SUBSYSTEMS:
        raise Fail(400, message % subsystem if "%s" in message else message)
    return subsystem


def plugins(ctx: AdminContext, req: AdminRequest) -> Answer:
    segs = req.segments[1:]
    if segs == ["reload"]:
        if req.method != "PUT":
            raise Fail(405, "please use PUT method to reload the plugins, %s method is not "
                            "allowed." % req.method)
        ctx.store.call("reload_plugins")
        return Answer(200, "done")
    if req.method != "GET":
        raise Fail(404, "not found")
    registry = _registry(ctx)
    if segs == ["list"]:
        subsystem = _subsystem(req, "invalid subsystem passed")
        return Answer(200, registry.names() if subsystem == "http" else [])
    if not segs:
        if req.args.get("all") == "true":
            return Answer(200, registry.all_info())
        raise Fail(400, "not found")
    return plugin_schema(ctx, req, segs[0])


def plugin_schema(ctx: AdminContext, req: AdminRequest, name: str) -> Answer:
    registry = _registry(ctx)
    subsystem = _subsystem(req, "unsupported subsystem: %s")
    if registry.get(name) is None:
        raise Fail(404, "plugin not found in subsystem %s" % subsystem)
    schema_type = req.args.get("schema_type") or "schema"
    described = registry.describe(name, schema_type)
    if described is None:
        raise Fail(400, "not found schema")
    return Answer(200, described)


def schema(ctx: AdminContext, req: AdminRequest) -> Answer:
    segs = req.segments[1:]
    if segs[:1] == ["validate"]:
        if req.method != "POST":
            raise Fail(404, "not found")
        return validate_resource(ctx, req, segs[1] if len(segs) > 1 else "")
    if req.method != "GET":
        raise Fail(404, "not found")
    if segs[:1] == ["plugins"] and len(segs) > 1:
        return plugin_schema(ctx, req, segs[1])
    name = segs[0] if segs else ""
    if name == "plugins":
        return Answer(200, {"type": "object"})
    kind = SCHEMA_NAMES.get(name)
    if kind is None:
        raise Fail(400, "not found schema: %s" % name)
    return Answer(200, schemas.SCHEMAS[kind])


def validate_resource(ctx: AdminContext, req: AdminRequest, resource: str) -> Answer:
    kind = resource if resource in schemas.SCHEMAS else SCHEMA_NAMES.get(resource)
    if kind is None:
        raise Fail(404, "Unsupported resource type: %s" % resource)
    body = req.json()
    problem = schemas.validate(kind, body)
    if problem:
        raise Fail(400, problem)
    return Answer(200, None)


#: declarative-config sections → kinds (APISIX's standalone layout)
CONFIG_SECTIONS = ("routes", "services", "upstreams", "consumers", "consumer_groups", "ssls",
                   "global_rules", "plugin_configs", "plugin_metadata", "stream_routes",
                   "protos", "secrets")


def _document(req: AdminRequest) -> dict:
    """A declarative config from the body: JSON, or YAML with Content-Type application/yaml."""
    if not req.raw or not req.raw.strip():
        raise Fail(400, "invalid request body: empty request body")
    if (req.headers.get("content-type") or "").startswith("application/yaml"):
        try:
            body = yaml.load(req.raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise Fail(400, "invalid request body: %s" % exc) from None
        if not isinstance(body, dict):
            raise Fail(400, "invalid request body: invalid yaml request body")
    else:
        body = req.json()
    if not isinstance(body, dict):
        raise Fail(400, "invalid request body: expected an object")
    return body


def configs(ctx: AdminContext, req: AdminRequest) -> Answer:
    rest = req.segments[1:]
    if not rest and ctx.api_standalone:
        if req.method == "PUT":
            return configs_put(ctx, req)
        if req.method in ("GET", "HEAD"):
            return configs_get(ctx, req)
    if rest != ["validate"] or req.method != "POST":
        raise Fail(404, "not found")
    body = _document(req)
    errors = []
    for section in CONFIG_SECTIONS:
        items = body.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            errors.append(_error(section, None, 0, "expected an array"))
            continue
        seen: set[str] = set()
        for index, item in enumerate(items):
            ident = _item_id(section, item)
            problem = _check_item(ctx, section, item)
            if problem is None and ident is not None:
                if ident in seen:
                    problem = "found duplicate id %s in %s" % (ident, section)
                seen.add(ident)
            if problem:
                errors.append(_error(section, ident, index, problem))
    if errors:
        raise Fail(400, {"error_msg": "Configuration validation failed", "errors": errors})
    return Answer(200, {})


DIGEST, LAST_MODIFIED = "X-Digest", "X-Last-Modified"


def _metadata_headers(config: dict | None) -> list[tuple[str, str]]:
    config = config or {}
    return [(LAST_MODIFIED, str(config.get(LAST_MODIFIED) or "")),
            (DIGEST, str(config.get(DIGEST) or ""))]


def configs_get(ctx: AdminContext, req: AdminRequest) -> Answer:
    config = ctx.store.call("configs_get")["config"]
    headers = _metadata_headers(config)
    if req.method == "HEAD":
        return Answer(200, None, headers)
    if config is None:
        config = {section + "_conf_version": 0 for section in CONFIG_SECTIONS}
    if (req.headers.get("accept") or "").startswith("application/yaml"):
        text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
        return Answer(200, text, headers + [("Content-Type", "application/yaml")])
    return Answer(200, config, headers)


def configs_put(ctx: AdminContext, req: AdminRequest) -> Answer:
    """APISIX's standalone `update`: digest, conf versions, every item checked, then the
    whole document replaces the running config (202; 204 when the digest is unchanged)."""
    digest = req.headers.get("x-digest")
    if not digest:
        raise Fail(400, "missing digest header")
    body = _document(req)
    current = ctx.store.call("configs_get")["config"] or {}
    if current.get(DIGEST) == digest:
        return Answer(204)
    document: dict[str, Any] = {}
    for section in CONFIG_SECTIONS:
        version_key = section + "_conf_version"
        old_version = current.get(version_key) or 0
        new_version = body.get(version_key)
        if new_version is None:
            new_version = old_version + 1
        elif not isinstance(new_version, (int, float)) or isinstance(new_version, bool):
            raise Fail(400, "%s must be a number" % version_key)
        elif new_version < old_version:
            raise Fail(400, "%s must be greater than or equal to (%s)"
                       % (version_key, old_version))
        document[version_key] = new_version
        if new_version == old_version:
            if current.get(section) is not None:
                document[section] = current[section]
            continue
        items = body.get(section) or []
        if not isinstance(items, list):
            raise Fail(400, "invalid %s: expected an array" % section)
        seen: set[str] = set()
        for index, item in enumerate(items):
            problem = _check_item(ctx, section, item)
            if problem:
                raise Fail(400, "invalid %s at index %d, err: %s" % (section, index, problem))
            ident = _item_id(section, item)
            if ident is not None:
                if ident in seen:
                    what = "username" if section == "consumers" and "id" not in item else "id"
                    if section == "consumers" and "id" in item:
                        what = "credential id"
                    raise Fail(400, "found duplicate %s %s in %s" % (what, ident, section))
                seen.add(ident)
        if items:
            document[section] = items
    document[LAST_MODIFIED] = int(time.time())
    document[DIGEST] = digest
    rev = ctx.store.call("configs_put", config=document)["rev"]
    ctx.store.settle(rev)
    return Answer(202, None, _metadata_headers(document))


def _item_id(section: str, item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    ident = item.get("id")
    if section == "consumers":
        ident = item.get("id") or item.get("username")
    return None if ident is None else str(ident)


def _check_item(ctx: AdminContext, section: str, item: Any) -> str | None:
    if not isinstance(item, dict):
        return "invalid configuration: object expected"
    kind = section
    if section == "consumers" and "/credentials/" in str(item.get("id") or ""):
        kind = "credentials"
    conf = copy.deepcopy(item)
    if section == "plugin_metadata":
        if ctx.plugins is None or ctx.plugins.get(str(conf.get("id"))) is None:
            return "invalid plugin name"
        conf.pop("id", None)
        return ctx.plugins.check_metadata(str(item.get("id")), conf)
    problem = schemas.validate(kind, conf)
    if problem:
        return problem
    try:
        check_plugins(ctx, conf.get("plugins"),
                      "consumer" if kind in ("consumers", "credentials") else "schema")
    except Fail as exc:
        return exc.body.get("error_msg")
    return None


def _error(section: str, ident: str | None, index: int, message: str) -> dict:
    return {"resource_type": section, "resource_id": ident, "index": index, "error": message}


HANDLERS: dict[str, Callable[[AdminContext, AdminRequest], Answer]] = {
    "plugins": plugins, "schema": schema, "configs": configs}
