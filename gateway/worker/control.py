"""The Control API (`apisix.control`, default 127.0.0.1:9090, prefix /v1, no auth).

What APISIX's control API shows about a running node, from this worker's view: the schemas
it validates with, the health of upstream nodes, and the config objects it serves. Off the
hot path: gevent's WSGI server on the inherited control socket.

  GET  /v1/schema                               core and plugin schemas
  GET  /v1/healthcheck                          every checker's nodes and counters
  GET  /v1/healthcheck/{routes|services|upstreams}/{id}
  POST /v1/gc                                   a full garbage collection
  GET  /v1/routes, /v1/route/{id}               objects as this worker holds them
  GET  /v1/services, /v1/service/{id}, /v1/upstreams, /v1/upstream/{id}
  GET  /v1/plugin_metadatas, /v1/plugin_metadata/{name}
  PUT  /v1/plugins/reload                       re-import plugins on this node
"""

from __future__ import annotations

import gc
import json
import socket
from collections.abc import Callable
from typing import Any

import gevent.pywsgi
import gevent.socket

from gateway import config
from gateway.core import schema as schemas
from gateway.core.log import log

#: /v1/<plural> and /v1/<singular>/{id} → the etcd directory
OBJECTS = {"routes": ("route", "routes"), "services": ("service", "services"),
           "upstreams": ("upstream", "upstreams"),
           "plugin_metadatas": ("plugin_metadata", "plugin_metadata")}
SINGULAR = {single: (single, directory) for single, directory in OBJECTS.values()}


class ControlApp:
    def __init__(self, conf: dict[str, Any], store: Callable[[], Any],
                 plugins: Callable[[], Any], reload_plugins: Callable[[], None]):
        self.server_header = config.server_header(conf).decode()
        self.store = store                  # the worker's LazyObjects, as it is now
        self.plugins = plugins              # the plugin registry, as it is now
        self.reload_plugins = reload_plugins

    def __call__(self, environ: dict, start_response) -> list[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO") or "/"
        try:
            status, body = self.serve(method, [s for s in path.split("/") if s])
        except Exception:  # noqa: BLE001 - never take the worker down
            log.exception("Control API %s %s failed", method, path)
            status, body = 500, {"error_msg": "internal error"}
        data = b"" if body is None else json.dumps(body).encode()
        start_response("%d %s" % (status, {200: "OK", 400: "Bad Request",
                                            404: "Not Found"}.get(status, "")),
                       [("Content-Type", "application/json"), ("Server", self.server_header),
                        ("Content-Length", str(len(data)))])
        return [data]

    def serve(self, method: str, segs: list[str]) -> tuple[int, Any]:
        if not segs or segs[0] != "v1" or len(segs) < 2:
            return 404, None
        what, rest = segs[1], segs[2:]
        if what == "schema" and method == "GET" and not rest:
            return 200, self.schema()
        if what == "healthcheck" and method == "GET":
            return self.healthcheck(rest)
        if what == "gc" and method == "POST" and not rest:
            gc.collect()
            return 200, None
        if what == "plugins" and rest == ["reload"] and method == "PUT":
            self.reload_plugins()
            return 200, "done"
        if method == "GET" and what in OBJECTS and not rest:
            return 200, self.listing(OBJECTS[what][1])
        if method == "GET" and what in SINGULAR and len(rest) == 1:
            single, directory = SINGULAR[what]
            found = self.one(directory, rest[0])
            if found is None:
                return 404, {"error_msg": "%s[%s] not found" % (single, rest[0])}
            return 200, found
        return 404, None

    def schema(self) -> dict[str, Any]:
        main = {kind.rstrip("s") if kind != "plugin_metadata" else kind: value
                for kind, value in schemas.SCHEMAS.items()}
        registry = self.plugins()
        plugins = registry.all_info() if registry is not None else {}
        return {"main": main, "plugins": plugins, "stream-plugins": {}}

    def healthcheck(self, rest: list[str]) -> tuple[int, Any]:
        from gateway.worker import healthcheck
        if not rest:
            return 200, healthcheck.status()
        if len(rest) != 2 or rest[0] not in ("routes", "services", "upstreams"):
            return 400, {"error_msg": "invalid src type %s" % (rest[0] if rest else "")}
        found = healthcheck.status_of(rest[0], rest[1])
        if found is None:
            return 404, {"error_msg": "no checker for %s[%s]" % (rest[0], rest[1])}
        return 200, found

    def listing(self, directory: str) -> list[dict[str, Any]]:
        store = self.store()
        prefix = "/apisix/%s/" % directory
        return [{"key": key, "value": store[key]} for key in sorted(store)
                if key.startswith(prefix) and "/" not in key[len(prefix):]]

    def one(self, directory: str, ident: str) -> dict[str, Any] | None:
        store = self.store()
        key = "/apisix/%s/%s" % (directory, ident)
        return {"key": key, "value": store[key]} if key in store else None


class _Handler(gevent.pywsgi.WSGIHandler):
    def log_request(self) -> None:
        pass


class ControlServer:
    def __init__(self, sock: socket.socket, app: ControlApp):
        gsock = gevent.socket.socket(sock.family, sock.type, fileno=sock.fileno())
        self.server = gevent.pywsgi.WSGIServer(gsock, app, handler_class=_Handler,
                                               log=None, error_log=None)

    def start(self) -> None:
        self.server.start()

    def stop(self, timeout: float = 1.0) -> None:
        self.server.stop(timeout=timeout)
