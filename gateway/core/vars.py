"""The ``vars`` expression language of routes (lua-resty-expr, spec §2.11), compiled once.

An expression is ``[var, op, value]`` or ``[var, "!", op, value]``; a list of expressions
is their AND; a list whose first element is ``"AND"``, ``"OR"``, ``"!AND"`` or ``"!OR"`` is
a logical node over the expressions that follow (nestable). :func:`compile_vars` turns the
whole tree into one Python closure over a :class:`~gateway.core.ctxvars.RequestVars`:
regexes, IP networks, ``in`` sets and variable accessors are all prepared here, so a request
pays only for the comparisons it reaches (AND/OR short-circuit).

Semantics kept from lua-resty-expr: an absent variable is ``nil`` (``==`` false, ``~=``
true, numeric and regex operators false); ``==``/``~=`` against a number compare numbers;
``>``/``<``/``>=``/``<=`` convert both sides to numbers (a non-number is false); ``~~`` and
``~*`` search (not anchored); ``in`` tests membership in the right-hand array; ``has`` tests
that the variable (a list, or a string split on commas never) contains the value;
``ipmatch`` tests the variable's IP against a list of addresses/CIDRs.

:func:`validate_vars` gives the schema check the same reason the compiler would raise.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from gateway.core.ctxvars import RequestVars, getter

__all__ = ["compile_vars", "validate_vars", "VarsError", "Predicate"]

Predicate = Callable[[RequestVars], bool]

LOGICAL = ("AND", "OR", "!AND", "!OR")
OPERATORS = ("==", "~=", ">", "<", ">=", "<=", "~~", "~*", "in", "has", "ipmatch")
#: deepest nesting accepted (a guard against pathological configs, not a lua limit)
MAX_DEPTH = 32


class VarsError(ValueError):
    """A ``vars`` expression that cannot be compiled; the message says which part."""


def validate_vars(expr: Any) -> str | None:
    """None when ``expr`` compiles, else the reason (for the schema check)."""
    try:
        compile_vars(expr)
    except VarsError as e:
        return str(e)
    return None


def compile_vars(expr: Any) -> Predicate:
    """``vars`` (the route field) → predicate over the request's variables."""
    if not isinstance(expr, list):
        raise VarsError("vars must be an array")
    if not expr:
        return _true
    if _is_logical(expr):
        return _logical(expr, 0)
    return _and([_node(e, 1) for e in expr])


def _true(v: RequestVars) -> bool:
    return True


def _is_logical(expr: list) -> bool:
    return isinstance(expr[0], str) and expr[0] in LOGICAL and (
        len(expr) == 1 or isinstance(expr[1], list))


def _node(expr: Any, depth: int) -> Predicate:
    if depth > MAX_DEPTH:
        raise VarsError("vars nested too deeply")
    if not isinstance(expr, list):
        raise VarsError("invalid expression %s: expected an array" % _show(expr))
    if expr and _is_logical(expr):
        return _logical(expr, depth)
    return _leaf(expr)


def _logical(expr: list, depth: int) -> Predicate:
    op = expr[0]
    if len(expr) < 2:
        raise VarsError("logical operator %s needs at least one expression" % op)
    parts = [_node(e, depth + 1) for e in expr[1:]]
    combined = _and(parts) if op in ("AND", "!AND") else _or(parts)
    if op[0] == "!":
        return lambda v: not combined(v)
    return combined


def _and(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        return lambda v: a(v) and b(v)
    return lambda v: all(p(v) for p in parts)


def _or(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    return lambda v: any(p(v) for p in parts)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _leaf(expr: list) -> Predicate:
    if len(expr) == 4:
        name, bang, op, value = expr
        if bang != "!":
            raise VarsError("invalid expression %s: the second of four elements must be "
                            "'!'" % _show(expr))
        negate = True
    elif len(expr) == 3:
        name, op, value = expr
        negate = False
    else:
        raise VarsError("invalid expression %s: expected [var, op, value] or "
                        "[var, '!', op, value]" % _show(expr))
    if not isinstance(name, str) or not name:
        raise VarsError("invalid expression %s: the variable must be a non-empty string"
                        % _show(expr))
    if not isinstance(op, str) or op not in OPERATORS:
        raise VarsError("invalid operator %s in expression %s" % (_show(op), _show(expr)))
    test = _operator(op, value, expr)
    get = getter(name)
    if negate:
        return lambda v: not test(get(v))
    return lambda v: test(get(v))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _operator(op: str, r: Any, expr: list) -> Callable[[Any], bool]:
    """The test of one operator against its (already prepared) right-hand side."""
    if op in ("==", "~="):
        if _is_number(r):
            rn = float(r)

            def eq(left: Any) -> bool:
                return left is not None and _number(left) == rn
        elif r is None:
            def eq(left: Any) -> bool:
                return left is None
        else:
            rs = _as_str(r)

            def eq(left: Any) -> bool:
                return left == rs
        if op == "==":
            return eq
        return lambda left: not eq(left)
    if op in (">", "<", ">=", "<="):
        rn = _number(r)
        if rn is None:
            raise VarsError("invalid expression %s: %s needs a number" % (_show(expr), op))
        cmp = {">": float.__gt__, "<": float.__lt__, ">=": float.__ge__,
               "<=": float.__le__}[op]

        def compare(left: Any) -> bool:
            ln = _number(left) if left is not None else None
            return ln is not None and cmp(ln, rn)
        return compare
    if op in ("~~", "~*"):
        if not isinstance(r, str):
            raise VarsError("invalid expression %s: %s needs a regex string"
                            % (_show(expr), op))
        try:
            rx = re.compile(r, re.IGNORECASE if op == "~*" else 0)
        except re.error as e:
            raise VarsError("invalid expression %s: failed to compile regex %s: %s"
                            % (_show(expr), _show(r), e)) from None
        search = rx.search
        return lambda left: isinstance(left, str) and search(left) is not None
    if op == "in":
        if not isinstance(r, list):
            raise VarsError("invalid expression %s: in needs an array" % _show(expr))
        strings = frozenset(_as_str(x) for x in r if not _is_number(x))
        numbers = frozenset(float(x) for x in r if _is_number(x))

        def member(left: Any) -> bool:
            if left is None:
                return False
            if left in strings:
                return True
            return bool(numbers) and _number(left) in numbers
        return member
    if op == "has":
        want = _as_str(r)

        def has(left: Any) -> bool:
            if isinstance(left, (list, tuple)):
                return want in left or r in left
            return False
        return has
    # ipmatch
    items = r if isinstance(r, list) else [r]
    nets = []
    for item in items:
        try:
            nets.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            raise VarsError("invalid expression %s: invalid ip address %s"
                            % (_show(expr), _show(item))) from None
    return _ip_test(nets)


def _ip_test(nets: list[Any]) -> Callable[[Any], bool]:
    def ipmatch(left: Any) -> bool:
        if not isinstance(left, str):
            return False
        try:
            ip = ipaddress.ip_address(left)
        except ValueError:
            return False
        return any(ip in n for n in nets if n.version == ip.version)
    return ipmatch


def _as_str(value: Any) -> Any:
    """A right-hand side as the string a variable would hold (``true`` stays as given)."""
    if isinstance(value, bool) or value is None:
        return value
    return str(value) if _is_number(value) else value
