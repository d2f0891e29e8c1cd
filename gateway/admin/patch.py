"""PATCH semantics of the Admin API (APISIX's `core.table.merge` and `core.table.patch`).

A whole-object PATCH deep-merges into the stored value: objects merge key by key, a `null`
deletes the key, anything else (arrays included) replaces. A sub-path PATCH
(`/routes/1/upstream/nodes`) replaces the value at that path, creating missing objects on the
way; walking through something that is not an object is `invalid sub-path`.
"""

from __future__ import annotations

from typing import Any

from gateway.admin.api import Fail


def merge(origin: dict, extend: dict) -> dict:
    for key, value in extend.items():
        if value is None:
            origin.pop(key, None)
        elif isinstance(value, dict) and isinstance(origin.get(key), dict) and value:
            merge(origin[key], value)
        else:
            origin[key] = value
    return origin


def at_path(value: dict, sub_path: str, conf: Any) -> dict:
    parts = [p for p in sub_path.split("/") if p]
    cur: Any = value
    walked = ""
    for part in parts[:-1]:
        walked += "/" + part
        nxt = cur.get(part) if isinstance(cur, dict) else None
        if nxt is None and isinstance(cur, dict):
            nxt = cur[part] = {}
        if not isinstance(nxt, dict):
            raise Fail(400, "invalid sub-path: " + walked)
        cur = nxt
    if not isinstance(cur, dict):
        raise Fail(400, "invalid sub-path: /" + parts[-1])
    cur[parts[-1]] = conf
    return value
