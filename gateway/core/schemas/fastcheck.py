"""A quick yes/no JSON Schema (draft 7) check, compiled once per schema.

Why: `jsonschema` spends most of an Admin API write's CPU in the worker (it builds a
validator and error objects per keyword and branch). Most objects written are valid, and for
those only a yes is needed: `fastjsonschema` compiles a schema into Python code that answers
it several times faster. The error message APISIX answers with still comes from `jsonschema`
(see `schema_error`), which runs only when this check says no; so this check must never say
yes where `jsonschema` says no. Formats are therefore checked by `jsonschema`'s own format
checker (fastjsonschema's built-in ones differ in details), defaults are never filled here
(the caller does it after validation), and a schema fastjsonschema cannot compile is left to
`jsonschema` alone (`compile_schema` returns None).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import fastjsonschema

Check = Callable[[Any], bool]

#: the pid of the process that does without quick checks (see :func:`disable`)
_disabled_in = [0]


def disable() -> None:
    """This process validates with jsonschema alone: the master, whose config sources check
    each object once. Compiling the route schema there would cost ~18 MB at once and leave
    ~5 MB behind in every worker forked after it; the quick checks pay off where Admin
    writes are answered (the workers). Only this process: a child forked from it (a
    worker) compiles them again."""
    _disabled_in[0] = os.getpid()


def enabled() -> bool:
    """Whether this process compiles quick checks. Callers that cache a compiled check ask
    first, so that a None cached in the master is not inherited by the workers."""
    return _disabled_in[0] != os.getpid()


def compile_schema(schema: Any, formats: Any) -> Check | None:
    """A check for ``schema`` (``formats``: the jsonschema FormatChecker the validator
    uses), or None when fastjsonschema cannot compile it or this process does without."""
    if not enabled():
        return None
    names = formats.checkers if formats is not None else {}
    fmt = {name: (lambda value, name=name: formats.conforms(value, name)) for name in names}
    try:
        validate = fastjsonschema.compile(schema, formats=fmt, use_default=False)
    except Exception:  # noqa: BLE001 - (JsonSchemaDefinitionException, odd schemas)
        return None
    error = fastjsonschema.JsonSchemaException

    def check(value: Any) -> bool:
        try:
            validate(value)
        except error:
            return False
        return True
    return check
