"""prometheus: per-request metrics with APISIX's names and labels (APISIX ``prometheus``,
priority 500, log phase), exported on ``plugin_attr.prometheus.export_addr``
(127.0.0.1:9091) at ``export_uri`` (``/apisix/prometheus/metrics``).

Per request: ``apisix_http_status`` +1 (code, route, matched_uri, matched_host, service,
consumer, node, request_type, request_llm_model, llm_model, response_source),
``apisix_http_latency`` (ms; type request, upstream when proxied, apisix) and
``apisix_bandwidth`` (type ingress = request line + headers + body, egress = response body
bytes). ``prefer_name: true`` labels the route by its name instead of its id. Label
children are cached per (route, status, node, consumer): see gateway/worker/metrics.py,
which also owns the node-wide gauges and the export server.
"""

from __future__ import annotations

import os
from typing import Any

from gateway.core.plugins import node_conf
from gateway.worker.consumers import Identity
from gateway.worker.metrics import ENV, METRICS

NAME = "prometheus"
PRIORITY = 500
VERSION = 0.2

SCHEMA = {
    "type": "object",
    "properties": {
        "prefer_name": {"type": "boolean", "default": False},
    },
}

_STRUCTURAL = {"http_status": ("code",), "http_latency": ("type",),
               "bandwidth": ("type",)}
_LABELS = {
    "http_status": ["code", "route", "matched_uri", "matched_host", "service", "consumer",
                    "node", "request_type", "request_llm_model", "llm_model",
                    "response_source"],
    "http_latency": ["type", "route", "service", "consumer", "node", "request_type",
                     "request_llm_model", "llm_model"],
    "bandwidth": ["type", "route", "service", "consumer", "node", "request_type",
                  "request_llm_model", "llm_model"],
}

METADATA_SCHEMA = {
    "type": "object",
    "properties": {
        "disabled_labels": {
            "type": "object",
            "properties": {
                metric: {"type": "array",
                         "items": {"type": "string",
                                   "enum": [x for x in labels
                                            if x not in _STRUCTURAL[metric]]}}
                for metric, labels in _LABELS.items()
            },
            "additionalProperties": False,
        },
    },
}


def prepare(conf: dict[str, Any], metadata: dict[str, Any]) -> Any:
    """What the log phase needs: prefer_name (a bool), or ``(prefer_name, disabled)``
    when the plugin metadata's ``disabled_labels`` blanks labels (APISIX keeps such a
    label, with the value ""). (The metrics are set up here too when the plugin was
    enabled by a plugins/reload after the worker booted.)"""
    if not METRICS.ready and os.environ.get(ENV):
        METRICS.setup(node_conf())
    prefer_name = bool(conf.get("prefer_name"))
    disabled = tuple(sorted((metric, frozenset(labels)) for metric, labels
                            in (metadata.get("disabled_labels") or {}).items() if labels))
    return (prefer_name, disabled) if disabled else prefer_name


def _consumer_name(consumer: Any) -> str:
    if consumer is None:
        return ""
    if isinstance(consumer, dict):
        return str(consumer.get("username") or "")
    return str(getattr(consumer, "username", consumer) or "")


def _matched_uri(route: Any, path: bytes) -> str:
    uris = route.uris
    if len(uris) == 1:
        return uris[0]
    p = path.decode("latin-1")
    for uri in uris:
        if uri == p or (uri.endswith("*") and p.startswith(uri[:-1])):
            return uri
    return uris[0] if uris else ""


def log(prefer_name: bool, ctx: Any) -> None:
    metrics = METRICS
    if not metrics.ready:
        return
    req = ctx.req
    status = ctx.status
    up = req.up_addr
    up_status = req.up_status
    consumer = ctx.consumer
    cname = "" if consumer is None else consumer.username \
        if consumer.__class__ is Identity else _consumer_name(consumer)
    route = req.route if req.target is not None else None
    multi = route is not None and len(route.uris) > 1
    key = (ctx.route_id, prefer_name, status, up, up_status != 0, cname,
           req.path if multi else None)
    children = metrics.cache.get(key)
    if children is None:
        disabled = None
        if prefer_name.__class__ is not bool:   # metadata disabled_labels (cold path)
            prefer_name, disabled = prefer_name
            disabled = dict(disabled)
        route_label = service = muri = mhost = ""
        if route is not None:
            route_label = ctx.route_id or ""
            if prefer_name and route.conf is not None and route.conf.get("name"):
                route_label = str(route.conf["name"])
            service = ctx.service_id or ""
            muri = _matched_uri(route, req.path)
            hosts = route.hosts
            mhost = hosts[0] if hosts and len(hosts) == 1 else ""
            if hosts and len(hosts) > 1:
                host = (req.host or b"").decode("latin-1")
                mhost = next((h for h in hosts if h == host or (
                    h.startswith("*") and host.endswith(h[1:]))), "")
        node = ""
        if up is not None:
            node = up.decode("latin-1").rsplit(":", 1)[0].strip("[]")
        source = "upstream" if up_status else ("nginx" if up is not None else "apisix")
        children = metrics.children(key, (str(status), route_label, muri, mhost, service,
                                          cname, node, source), disabled)
    children.record((ctx.client.server.now() - req.t_start) * 1000.0,
                    req.up_time * 1000.0 if up is not None else None,
                    len(req.method) + len(req.url or b"") + 12 + sum(map(len, req.hdrs))
                    + (req.nbody or 0),
                    req.sent)
