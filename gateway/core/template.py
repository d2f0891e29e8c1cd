"""``$var`` / ``${var}`` / ``${var ?? default}`` templates in plugin confs (APISIX's
``core.utils.resolve_var``), compiled once when the table is built.

:func:`compile_template` splits a template into literal pieces and variable getters, so a
request pays for the lookups and one join, never for a regex. A ``$`` preceded by a
backslash is literal (the backslash stays, as in APISIX). An absent variable resolves to
the default after ``??``, else to the empty string. ``$1``/``${1}`` are regex captures
(proxy-rewrite's ``regex_uri`` groups), given at resolve time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from gateway.core.ctxvars import RequestVars, getter

__all__ = ["compile_template", "Template"]

Template = Callable[..., str]

_VAR = re.compile(r"(?<!\\)\$(\{\s*([^}]+?)\s*\}|([\w.]+))")
_DEFAULT = re.compile(r"\s*\?\?\s*")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def compile_template(tpl: str, escaper: Callable[[str], str] | None = None) -> Template:
    """``tpl`` → ``resolve(vars, groups=None)`` giving the resolved string. ``$1``/``${1}``
    name a regex group of ``groups`` (proxy-rewrite's captures; empty without them). A
    template without ``$`` becomes a constant function. ``escaper`` applies to each value."""
    if "$" not in tpl:
        return lambda v, groups=None: tpl
    parts: list[Any] = []
    pos = 0
    for m in _VAR.finditer(tpl):
        if m.start() > pos:
            parts.append(tpl[pos:m.start()])
        name = m.group(2) or m.group(3)
        segs = _DEFAULT.split(name, maxsplit=1)
        source: Any = int(segs[0]) if segs[0].isdigit() else getter(segs[0])
        parts.append((source, segs[1] if len(segs) > 1 else ""))
        pos = m.end()
    if pos < len(tpl):
        parts.append(tpl[pos:])
    frozen = tuple(parts)

    def resolve(v: RequestVars, groups: Sequence[str | None] | None = None) -> str:
        out = []
        for part in frozen:
            if isinstance(part, str):
                out.append(part)
                continue
            source, default = part
            if isinstance(source, int):
                value = groups[source] if groups is not None and source < len(groups) \
                    else None
            else:
                value = source(v)
            text = default if value is None else _text(value)
            out.append(escaper(text) if escaper is not None else text)
        return "".join(out)
    return resolve
