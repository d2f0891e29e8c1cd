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


def configs(ctx: AdminContext, req: AdminRequest) -> Answer:
    if req.segments[1:] != ["validate"] or req.method != "POST":
        raise Fail(404, "not found")
    if not req.raw or not req.raw.strip():
        raise Fail(400, "invalid request body: empty request body")
    if "yaml" in (req.headers.get("content-type") or ""):
        try:
            body = yaml.safe_load(req.raw)
        except yaml.YAMLError as exc:
            raise Fail(400, "invalid request body: %s" % exc) from None
    else:
        body = req.json()
    if not isinstance(body, dict):
        raise Fail(400, "invalid request body: expected an object")
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


def _item_id(section: str, item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    ident = item.get("username") if section == "consumers" else item.get("id")
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
