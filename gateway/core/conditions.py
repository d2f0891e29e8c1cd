"""Route conditions beyond path/host/method, compiled once per table build.

* ``remote_addr``/``remote_addrs``: IPv4/IPv6 addresses and CIDRs, parsed into
  ``ipaddress`` networks split by family, so a request tests only its own family.
* ``filter_func``: Python source defining exactly one function of the request variables
  (``def filter(vars): return vars["arg_x"] == "1"``). APISIX takes Lua here; a gateway in
  Python takes Python. The source is compiled when the table is built (a syntax error, or
  not exactly one function, is a schema error); an exception raised while matching is
  logged (rate-limited) and counts as "no match", never as a crash.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Any

from gateway.core.ctxvars import RequestVars
from gateway.core.log import log

__all__ = ["compile_remote_addrs", "compile_filter_func", "validate_filter_func"]

#: seconds between two error-log lines for the same failing filter_func
FILTER_ERROR_EVERY = 1.0


def compile_remote_addrs(addrs: list[str]) -> Callable[[RequestVars], bool]:
    """A test of the request's ``remote_addr`` against ``addrs``. Raises ValueError."""
    v4: list[Any] = []
    v6: list[Any] = []
    exact: set[str] = set()
    for text in addrs:
        if not isinstance(text, str) or not text:
            raise ValueError("invalid remote_addr %r" % (text,))
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError("invalid remote_addr %r: expected an IPv4/IPv6 address or "
                             "CIDR" % text) from None
        if "/" not in text:
            exact.add(str(net.network_address))
        (v4 if net.version == 4 else v6).append(net)
    only_exact = len(exact) == len(v4) + len(v6)

    def test(v: RequestVars) -> bool:
        if only_exact and v.remote_addr.decode("latin-1") in exact:
            return True
        ip = v.ip()
        if ip is None:
            return False
        nets = v4 if ip.version == 4 else v6
        for net in nets:
            if ip in net:
                return True
        return False
    return test


def validate_filter_func(source: Any) -> str | None:
    """None when ``source`` compiles to one function, else the reason."""
    try:
        compile_filter_func(source, "<check>")
    except ValueError as e:
        return str(e)
    return None


def compile_filter_func(source: Any, where: str = "filter_func"
                        ) -> Callable[[RequestVars], bool]:
    """Python source with one function of ``vars`` → a safe predicate. Raises ValueError."""
    if not isinstance(source, str):
        raise ValueError("filter_func must be a string")
    try:
        code = compile(source, "<%s>" % where, "exec")
    except SyntaxError as e:
        raise ValueError("filter_func is not valid Python (line %s: %s); it must define "
                         "one function, e.g. 'def filter(vars): ...'" % (e.lineno, e.msg)
                         ) from None
    namespace: dict[str, Any] = {}
    try:
        exec(code, namespace)  # noqa: S102 - admin-supplied route code, like APISIX's Lua
    except Exception as e:  # noqa: BLE001
        raise ValueError("filter_func failed to load: %s" % e) from None
    funcs = [v for k, v in namespace.items() if k != "__builtins__" and callable(v)
             and getattr(v, "__code__", None) is not None]
    if len(funcs) != 1:
        raise ValueError("filter_func must define exactly one function (found %d)"
                         % len(funcs))
    func = funcs[0]
    if func.__code__.co_argcount != 1:
        raise ValueError("filter_func's function must take one argument (the request "
                         "vars)")
    last_error = [0.0]

    def safe(v: RequestVars) -> bool:
        try:
            return bool(func(v))
        except Exception as e:  # noqa: BLE001 - a user's function must not break a request
            now = time.monotonic()
            if now - last_error[0] >= FILTER_ERROR_EVERY:
                last_error[0] = now
                log.error("%s raised %s: %s (treated as no match)", where,
                          type(e).__name__, e)
            return False
    return safe
