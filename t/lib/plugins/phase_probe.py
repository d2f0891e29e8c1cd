"""phase-probe: a test-only plugin that records the phases it ran in (``X-Trail`` response
header, a ``log`` line), and can exit or raise in a chosen phase. Used by
t/plugin/plugin-system.t through ``apisix.extra_plugin_paths``."""

from __future__ import annotations

from typing import Any

from gateway.core.log import log as error_log

NAME = "phase-probe"
PRIORITY = 100
VERSION = 0.1

SCHEMA = {
    "type": "object",
    "properties": {
        "tag": {"type": "string", "default": "p"},
        "raise_in": {"type": "string"},
        "exit_in": {"type": "string"},
        "status": {"type": "integer", "default": 403},
        "body": {},
    },
}


def _mark(conf: dict[str, Any], ctx: Any, phase: str) -> Any:
    if conf.get("raise_in") == phase:
        raise RuntimeError("probe failure")
    ctx.data.setdefault("trail", []).append("%s:%s" % (conf["tag"], phase))
    if conf.get("exit_in") == phase:
        return conf["status"], conf.get("body")
    return None


def rewrite(conf: dict[str, Any], ctx: Any) -> Any:
    return _mark(conf, ctx, "rewrite")


def access(conf: dict[str, Any], ctx: Any) -> Any:
    return _mark(conf, ctx, "access")


def before_proxy(conf: dict[str, Any], ctx: Any) -> Any:
    return _mark(conf, ctx, "before_proxy")


def header_filter(conf: dict[str, Any], ctx: Any) -> None:
    _mark(conf, ctx, "header_filter")
    ctx.response_headers.set("X-Trail", ",".join(ctx.data["trail"]))
    ctx.response_headers.set("X-Status-Seen", ctx.status)


def log(conf: dict[str, Any], ctx: Any) -> None:
    error_log.warning("phase-probe log: %s route %s status %d", conf["tag"], ctx.route_id,
                      ctx.status)
