"""The one generic Admin API resource: GET/PUT/POST/PATCH/DELETE over an etcd directory.

Per-kind modules (gateway/admin/kinds.py) only declare what differs: the words used in
messages, the methods a kind refuses, its own validation, what protects a delete, and how
values are stored (encrypted fields) and shown (private keys removed). The order of checks
and the answers follow APISIX's `apisix/admin/resource.lua`:

  PUT    check (id rules, forbidden time fields, kind rules) → put keeping the replaced
         version's create_time (one etcd txn, see gateway/master/admin_replace.py)
         → 201 created / 200 replaced, ``{"key", "value"}``
  POST   check without id → id from the etcd revision (20 digits) → put → 201
  PATCH  read → merge (or replace at a sub-path) → check → compare-and-swap on the read's
         mod revision → 200 (a concurrent change → 503 "value changed before overwritten")
  GET    one ``{"key", "value", "createdIndex", "modifiedIndex"}``; list ``{"list", "total"}``
  DELETE reference checks unless ``?force=true`` → ``{"deleted": "1", "key"}``

A write is answered only once every serving worker's tables serve its revision (Store.settle).
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from gateway.admin import listing, patch
from gateway.admin.api import NOT_FOUND, AdminRequest, Answer, Fail
from gateway.admin.store import Item, StoreError

if TYPE_CHECKING:
    from gateway.admin.context import AdminContext

TIME_FIELDS = ("create_time", "update_time")


class Resource:
    #: etcd directory and URL segment ("routes")
    name = ""
    #: the word in messages ("route": "missing route id", "not supported `POST` method for route")
    kind = ""
    #: methods answered 405
    unsupported: frozenset[str] = frozenset()
    #: False where the key is not an `id` written into the object (consumers, metadata)
    has_id = True

    # ------------------------------------------------------------------ per-kind hooks
    def check(self, ctx: AdminContext, ident: str | None, conf: Any) -> None:
        """The kind's own rules (schema, plugins, references); raise Fail(400, msg)."""

    def delete_check(self, ctx: AdminContext, ident: str) -> None:
        """Refuse a delete while something uses the object (skipped with ?force=true)."""

    def to_storage(self, ctx: AdminContext, conf: dict) -> dict:
        """The value written to etcd (e.g. private keys encrypted)."""
        return conf

    def to_output(self, ctx: AdminContext, value: Any) -> Any:
        """The value shown to a client (e.g. private keys removed, fields decrypted)."""
        return value

    def base(self, req: AdminRequest) -> str:
        """The etcd directory of this request's objects."""
        return "/apisix/" + self.name

    def ident(self, req: AdminRequest) -> tuple[str | None, str]:
        """(id, sub_path) from the URL: /routes/1/methods → ("1", "methods")."""
        segs = req.segments[1:]
        return (segs[0] if segs else None), "/".join(segs[1:])

    def list_filter(self, base: str, item: Item) -> bool:
        """Whether a listed key is an object of this kind (not a directory placeholder or a
        sub-resource)."""
        rest = item.key[len(base) + 1:]
        return bool(rest) and "/" not in rest and isinstance(item.value, dict)

    # ------------------------------------------------------------------ dispatch
    def handle(self, ctx: AdminContext, req: AdminRequest) -> Answer:
        method = req.method
        if method in self.unsupported or method not in _HANDLERS:
            raise Fail(405, "not supported `%s` method for %s" % (method, self.kind))
        try:
            return getattr(self, _HANDLERS[method])(ctx, req)
        except StoreError as exc:
            raise Fail(503, str(exc)) from None

    # ------------------------------------------------------------------ checks
    def check_conf(self, ctx: AdminContext, ident: str | None, conf: Any, need_id: bool,
                   allow_time: bool = False) -> str | None:
        """APISIX's check order; returns the object's id."""
        if conf is None:
            raise Fail(400, "missing configurations")
        if not isinstance(conf, dict):
            raise Fail(400, "invalid configuration: object expected")   # schema wording below
        if self.has_id:
            ident = ident if ident is not None else _str_id(conf.get("id"))
            if need_id and ident is None:
                raise Fail(400, "missing %s id" % self.kind)
            if not need_id and ident is not None:
                raise Fail(400, "wrong %s id, do not need it" % self.kind)
            if need_id and conf.get("id") is not None and str(conf["id"]) != str(ident):
                raise Fail(400, "wrong %s id" % self.kind)
            if ident is not None:
                conf["id"] = conf.get("id", ident)
        if not allow_time:
            forbidden = _forbidden_time_field(conf)
            if forbidden:
                raise Fail(400, "the property is forbidden:  " + forbidden)
        self.check(ctx, ident, conf)
        return ident

    # ------------------------------------------------------------------ methods
    def get(self, ctx: AdminContext, req: AdminRequest) -> Answer:
        ident, _ = self.ident(req)
        base = self.base(req)
        if ident is not None:
            item = ctx.store.get(base + "/" + ident)
            if item is None or not isinstance(item.value, dict):
                return Answer(404, NOT_FOUND)
            return Answer(200, self.item_body(ctx, item, indexes=True))
        items = [it for it in ctx.store.list(base + "/") if self.list_filter(base, it)]
        items = listing.select(items, req, self.name)
        return Answer(200, {"list": [self.item_body(ctx, it, indexes=True) for it in items],
                            "total": listing.total(items)})

    def put(self, ctx: AdminContext, req: AdminRequest) -> Answer:
        ident, _ = self.ident(req)
        conf = req.json()
        ident = self.check_conf(ctx, ident, conf, need_id=True)
        key = self.base(req) + "/" + str(ident if ident is not None else self.key_of(conf))
        conf["create_time"] = conf["update_time"] = int(time.time())
        stored = self.to_storage(ctx, conf)
        existed, stored["create_time"], rev = ctx.store.replace(key, stored, ttl=req.ttl())
        ctx.store.settle(rev)
        return Answer(200 if existed else 201, self.write_body(ctx, key, stored))

    def post(self, ctx: AdminContext, req: AdminRequest) -> Answer:
        ident, _ = self.ident(req)
        conf = req.json()
        self.check_conf(ctx, ident, conf, need_id=False)
        ttl = req.ttl()
        ident = ctx.store.gen_id()
        conf["id"] = ident
        now = int(time.time())
        conf["create_time"] = conf["update_time"] = now
        key = self.base(req) + "/" + ident
        stored = self.to_storage(ctx, conf)
        _, rev = ctx.store.put(key, stored, ttl=ttl)
        ctx.store.settle(rev)
        return Answer(201, self.write_body(ctx, key, stored))

    def patch(self, ctx: AdminContext, req: AdminRequest) -> Answer:
        ident, sub_path = self.ident(req)
        if ident is None:
            raise Fail(400, "missing %s id" % self.kind)
        conf = req.json()
        if conf is None:
            raise Fail(400, "missing new configuration")
        if not sub_path and not isinstance(conf, dict):
            raise Fail(400, "invalid configuration")
        key = self.base(req) + "/" + ident
        old = ctx.store.get(key)
        if old is None or not isinstance(old.value, dict):
            return Answer(404, NOT_FOUND)
        value = self.to_output_full(ctx, old.value)
        if sub_path:
            value = patch.at_path(value, sub_path, conf)
            value["update_time"] = int(time.time())
        else:
            value = patch.merge(value, conf)
            if "update_time" not in conf:
                value["update_time"] = int(time.time())
        value.setdefault("create_time", int(time.time()))
        self.check_conf(ctx, ident, value, need_id=True, allow_time=True)
        stored = self.to_storage(ctx, value)
        ok, rev = ctx.store.put(key, stored, ttl=req.ttl(), mod=old.mod)
        if not ok:
            raise Fail(503, "value changed before overwritten")
        ctx.store.settle(rev)
        return Answer(200, self.write_body(ctx, key, stored))

    def delete(self, ctx: AdminContext, req: AdminRequest) -> Answer:
        ident, _ = self.ident(req)
        if ident is None:
            raise Fail(400, "missing %s id" % self.kind)
        if req.args.get("force") != "true":
            self.delete_check(ctx, ident)
        key = self.base(req) + "/" + ident
        deleted, rev = ctx.store.delete(key, children=self.name == "consumers")
        if not deleted:
            return Answer(404, NOT_FOUND)
        ctx.store.settle(rev)
        return Answer(200, {"deleted": "1", "key": ctx.display_key(key)})

    # ------------------------------------------------------------------ bodies
    def key_of(self, conf: dict) -> str:
        raise Fail(400, "missing %s id" % self.kind)

    def to_output_full(self, ctx: AdminContext, value: dict) -> dict:
        """The stored value made editable for PATCH (decrypted, nothing removed)."""
        return copy.deepcopy(value)

    def item_body(self, ctx: AdminContext, item: Item, indexes: bool) -> dict:
        body = {"key": ctx.display_key(item.key),
                "value": self.to_output(ctx, copy.deepcopy(item.value))}
        if indexes:
            body["createdIndex"] = item.create
            body["modifiedIndex"] = item.mod
        return body

    def write_body(self, ctx: AdminContext, key: str, stored: dict) -> dict:
        """Shows `stored` itself, no copy: every caller has written it already and drops it."""
        return {"key": ctx.display_key(key), "value": self.to_output(ctx, stored)}


_HANDLERS = {"GET": "get", "PUT": "put", "POST": "post", "PATCH": "patch", "DELETE": "delete"}


def _str_id(value: Any) -> str | None:
    return None if value is None else str(value)


def _forbidden_time_field(conf: dict) -> str | None:
    """APISIX refuses client-set timestamps on PUT/POST, in the object, its inline upstream
    and its plugin confs."""
    places = [conf]
    if isinstance(conf.get("upstream"), dict):
        places.append(conf["upstream"])
    if isinstance(conf.get("plugins"), dict):
        places += [p for p in conf["plugins"].values() if isinstance(p, dict)]
    for place in places:
        for name in TIME_FIELDS:
            if name in place:
                return name
    return None
