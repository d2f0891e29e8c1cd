"""List GETs: APISIX v3's filters (`name`, `label`, `uri`, `filter=service_id%3D1`) and
paging (`page`, `page_size` 10–500, in creation order).

`total` counts the items after filtering and before paging.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from gateway.admin.api import AdminRequest, Fail
from gateway.admin.store import Item

#: reference filters APISIX accepts in `filter=` (3.13+)
REF_FILTERS = ("service_id", "upstream_id")


class Page(list):
    """A page of items that remembers how many matched before paging."""

    total = 0


def _regex(pattern: str) -> re.Pattern | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _keep(item: Item, args: dict[str, str], kind: str, refs: dict[str, str]) -> bool:
    value: dict[str, Any] = item.value
    name = args.get("name")
    if name:
        rx = _regex(name)
        if rx is None or not isinstance(value.get("name"), str) or not rx.search(value["name"]):
            return False
    label = args.get("label")
    if label:
        labels = value.get("labels")
        if not isinstance(labels, dict) or label not in labels:
            return False
    uri = args.get("uri")
    if uri and kind == "routes":
        rx = _regex(uri)
        uris = [value["uri"]] if isinstance(value.get("uri"), str) else value.get("uris") or []
        if rx is None or not any(isinstance(u, str) and rx.search(u) for u in uris):
            return False
    for field, wanted in refs.items():
        if str(value.get(field)) != wanted:
            return False
    return True


def select(items: list[Item], req: AdminRequest, kind: str) -> Page:
    args = req.args
    refs: dict[str, str] = {}
    if args.get("filter") and kind in ("routes", "stream_routes"):
        refs = {k: v for k, v in parse_qsl(args["filter"]) if k in REF_FILTERS}
    if any(args.get(k) for k in ("name", "label", "uri")) or refs:
        items = [it for it in items if _keep(it, args, kind, refs)]
    page = Page()
    page.total = len(items)
    if "page" in args or "page_size" in args:
        try:
            number = int(args.get("page") or 1)
            size = int(args.get("page_size") or 10)
        except ValueError:
            raise Fail(400, "page and page_size must be integers") from None
        if not 10 <= size <= 500:
            raise Fail(400, b"page_size must be between 10 and 500")   # raw, as APISIX
        items = sorted(items, key=lambda it: it.create)
        start = (max(number, 1) - 1) * size
        items = items[start:start + size]
    page.extend(items)
    return page


def total(page: list) -> int:
    return getattr(page, "total", len(page))
