"""The Admin API listener in each worker (`deployment.admin.admin_listen`, default :9180).

Off the hot path, so ordinary gevent code: gevent's WSGI server on the inherited admin socket,
a greenlet per connection. This module does what APISIX's `apisix/admin/init.lua` does before
a resource sees a request: the client address allowlist (`allow_admin`), CORS, the
`HEAD /apisix/admin` probe, the admin key (query `api_key`, header `X-API-KEY`, cookie
`x_api_key`; role `viewer` may only GET), the body limit, and routing by the first path
segment. Every answer carries `Server: APISIX/<version>`, `X-API-VERSION` and JSON content.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from http.cookies import SimpleCookie
from typing import Any

import gevent.pywsgi
import gevent.socket

from gateway.admin import endpoints
from gateway.admin.api import MAX_BODY, AdminRequest, Answer, Fail, encode
from gateway.admin.context import AdminContext
from gateway.admin.kinds import CREDENTIALS, RESOURCES
from gateway.core.log import log

PREFIX = "/apisix/admin"

_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
            400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Not Allowed", 413: "Request Entity Too Large", 500: "Internal Server Error",
            503: "Service Temporarily Unavailable"}

_FORBIDDEN_PAGE = (b"<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n"
                   b"<center><h1>403 Forbidden</h1></center>\r\n<hr><center>openresty</center>"
                   b"\r\n</body>\r\n</html>\r\n")

_CORS = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Credentials", "true"),
         ("Access-Control-Expose-Headers", "*"), ("Access-Control-Max-Age", "3600")]
_PREFLIGHT = [("Access-Control-Allow-Methods", "POST, GET, PUT, OPTIONS, DELETE, PATCH"),
              ("Access-Control-Allow-Headers", "*")]


class AdminApp:
    """The WSGI application (kept free of the server so it can be driven directly)."""

    def __init__(self, ctx: AdminContext):
        self.ctx = ctx
        admin = ctx.conf["deployment"]["admin"]
        self.cors = bool(admin.get("enable_admin_cors", True))
        self.version = str(admin.get("admin_api_version") or "v3")
        keys = admin.get("admin_key")
        self.keys: list[dict[str, Any]] | None = None
        if admin.get("admin_key_required", True) and keys:
            self.keys = [k for k in keys if isinstance(k, dict)]
        allow = admin.get("allow_admin")
        self.allow = None if not allow else [ipaddress.ip_network(a, strict=False)
                                             for a in allow]

    # ------------------------------------------------------------------ WSGI
    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        remote = environ.get("REMOTE_ADDR") or ""
        if self.allow is not None and not self._allowed(remote):
            start_response("403 Forbidden", [("Content-Type", "text/html"),
                                              ("Server", self.ctx.server_header)])
            return [_FORBIDDEN_PAGE]
        try:
            answer = self.serve(environ, method, remote)
        except Fail as exc:
            answer = Answer(exc.status, exc.body)
        except Exception:  # noqa: BLE001 - a bug answers 500, never kills the worker
            log.exception("Admin API %s %s failed", method, environ.get("PATH_INFO"))
            answer = Answer(500, {"error_msg": "internal error"})
        encoded = encode(answer.body)
        body = encoded if method != "HEAD" else b""
        own_type = any(h[0].lower() == "content-type" for h in answer.headers)
        headers = ([] if own_type else [("Content-Type", "application/json")]) + [
            ("Server", self.ctx.server_header), ("X-API-VERSION", self.version)]
        if self.cors:
            headers += _CORS
        headers += answer.headers
        if not any(h[0] == "Content-Length" for h in headers):
            headers.append(("Content-Length", str(len(encoded))))
        start_response("%d %s" % (answer.status, _REASONS.get(answer.status, "")), headers)
        return [body]

    def _allowed(self, remote: str) -> bool:
        try:
            addr = ipaddress.ip_address(remote.split("%")[0])
        except ValueError:
            return False
        if addr.version == 6 and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.allow or ())

    # ------------------------------------------------------------------ request
    def serve(self, environ: dict, method: str, remote: str) -> Answer:
        path = environ.get("PATH_INFO") or "/"
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            raise Fail(404, {"error_msg": "not found"})
        if method == "OPTIONS" and self.cors:
            return Answer(200, None, _PREFLIGHT + [("Content-Type", "text/plain")])
        sub = path[len(PREFIX):]
        if method == "HEAD" and sub.strip("/") == "":
            return Answer(200)
        self.check_token(environ, method)
        body = self._body(environ)
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
                   if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        req = AdminRequest(method, sub, environ.get("QUERY_STRING") or "", body, headers,
                           remote)
        return self.route(req)

    def route(self, req: AdminRequest) -> Answer:
        segs = req.segments
        if not segs:
            raise Fail(404, {"error_msg": "not found"})
        first = segs[0]
        if first == "consumers" and len(segs) >= 3 and segs[2] == "credentials":
            return CREDENTIALS.handle(self.ctx, req)
        resource = RESOURCES.get(first)
        if resource is not None:
            if self.ctx.api_standalone:
                raise Fail(400, "%s cannot be changed one by one in API-driven standalone "
                                "mode: use /apisix/admin/configs" % first)
            return resource.handle(self.ctx, req)
        handler = endpoints.HANDLERS.get(first)
        if handler is not None:
            return handler(self.ctx, req)
        raise Fail(404, "Unsupported resource type: %s" % first)

    def check_token(self, environ: dict, method: str) -> None:
        if self.keys is None:
            return
        token = _query_arg(environ.get("QUERY_STRING") or "", "api_key") \
            or environ.get("HTTP_X_API_KEY") or _cookie(environ.get("HTTP_COOKIE"), "x_api_key")
        if not token:
            raise Fail(401, {"error_msg": "failed to check token",
                             "description": "missing apikey"})
        for entry in self.keys:
            if entry.get("key") and entry.get("key") == token:
                if entry.get("role") == "viewer" and method not in ("GET", "HEAD"):
                    raise Fail(401, {"error_msg": "failed to check token",
                                     "description": "invalid method for role viewer"})
                return
        raise Fail(401, {"error_msg": "failed to check token", "description": "wrong apikey"})

    @staticmethod
    def _body(environ: dict) -> bytes:
        length = environ.get("CONTENT_LENGTH")
        stream = environ["wsgi.input"]
        if length:
            if int(length) > MAX_BODY:
                raise Fail(413, "request body too large")
            return stream.read(int(length))
        data = stream.read(MAX_BODY + 1)
        if len(data) > MAX_BODY:
            raise Fail(413, "request body too large")
        return data


def _query_arg(query: str, name: str) -> str | None:
    from urllib.parse import parse_qsl
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == name:
            return value
    return None


def _cookie(header: str | None, name: str) -> str | None:
    if not header:
        return None
    jar = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # noqa: BLE001 - a malformed cookie header is just no token
        return None
    return jar[name].value if name in jar else None


class _Handler(gevent.pywsgi.WSGIHandler):
    """pywsgi's handler without its own access log lines (secrets may be in query args)."""

    def log_request(self) -> None:
        pass


class AdminServer:
    def __init__(self, sock: socket.socket, ctx: AdminContext, ssl_context: Any = None):
        gsock = gevent.socket.socket(sock.family, sock.type, fileno=sock.fileno())
        self.app = AdminApp(ctx)
        # ssl_context: deployment.admin.https_admin (gateway.worker.tls.admin_context)
        extra = {"ssl_context": ssl_context} if ssl_context is not None else {}
        self.server = gevent.pywsgi.WSGIServer(gsock, self.app, handler_class=_Handler,
                                               log=None, error_log=None, **extra)

    def start(self) -> None:
        self.server.start()

    def stop(self, timeout: float = 1.0) -> None:
        self.server.stop(timeout=timeout)
