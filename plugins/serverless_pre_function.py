"""serverless-pre-function: run user functions, given as Python source, in one phase
(APISIX ``serverless-pre-function``, priority 10000; ``serverless-post-function`` is the
same at -2000).

``functions`` (required): a list of Python sources, each defining a function (the last one
it defines is used). ``phase``: ``rewrite``, ``access`` (default), ``before_proxy``,
``header_filter``, ``body_filter`` or ``log``. Request-side and header_filter/log functions
are called as ``f(conf, ctx)``: a returned ``status`` or ``(status, body)`` from a
request-side phase ends the request, as in APISIX. body_filter functions are called as
``f(conf, ctx, chunk, eof)`` and may return the new chunk (bytes or str).

A source that does not compile, or defines no function, is a schema error. Sources are
compiled once, when the worker builds its table, and the plugin only takes part in its
configured phase (a route pays nothing in the others). The code is trusted: whoever holds
the Admin API key can run code in the gateway, as with APISIX's Lua functions.
"""

from __future__ import annotations

import ast
from typing import Any

NAME = "serverless-pre-function"
PRIORITY = 10000
VERSION = 0.1

PHASE_NAMES = ["rewrite", "access", "header_filter", "body_filter", "log", "before_proxy"]
SCHEMA = {
    "type": "object",
    "properties": {
        "phase": {"type": "string", "default": "access", "enum": PHASE_NAMES},
        "functions": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
    "required": ["functions"],
}


def check_schema(conf: dict[str, Any], schema_type: str) -> str | None:
    for source in conf.get("functions") or ():
        try:
            tree = ast.parse(source, "<serverless function>")
        except SyntaxError as e:
            return "failed to compile: %s (line %s)" % (e.msg, e.lineno)
        if not any(isinstance(n, ast.FunctionDef) for n in tree.body):
            return "only accept Python function, the input code defines no function"
    return None


def load_function(source: str, name: str) -> Any:
    namespace: dict[str, Any] = {"__name__": "serverless"}
    exec(compile(source, "<%s function>" % name, "exec"), namespace)  # noqa: S102 - admin-set code
    names = [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]
    return namespace[names[-1]]


class Functions:
    """What the phase functions get: the compiled functions and the one phase they run in
    (``phases`` narrows the chain, see plugin_chain.Chain)."""

    __slots__ = ("funcs", "phases", "conf")

    def __init__(self, conf: dict[str, Any], name: str):
        self.funcs = tuple(load_function(s, name) for s in conf["functions"])
        self.phases = (conf.get("phase", "access"),)
        self.conf = conf


def prepare(conf: dict[str, Any]) -> Functions:
    return Functions(conf, NAME)


def _call(fs: Functions, ctx: Any) -> Any:
    conf = fs.conf
    for func in fs.funcs:
        result = func(conf, ctx)
        if result is not None:
            return result
    return None


def _notify(fs: Functions, ctx: Any) -> None:
    conf = fs.conf
    for func in fs.funcs:
        func(conf, ctx)


def body_filter(fs: Functions, ctx: Any, chunk: bytes, eof: bool) -> Any:
    conf = fs.conf
    for func in fs.funcs:
        result = func(conf, ctx, chunk, eof)
        if result is not None:
            chunk = result if isinstance(result, bytes) else str(result).encode()
    return chunk


rewrite = access = before_proxy = _call
header_filter = log = _notify
