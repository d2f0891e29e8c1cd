"""The Admin API's resource kinds: tiny declarations over the generic Resource.

Each says what APISIX's per-kind admin module says: its words, the methods it refuses, its
own checks (schema, plugins, references to other objects), what protects a delete, and how
its values are stored and shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.admin.api import AdminRequest, Fail
from gateway.admin.resource import Resource
from gateway.admin.store import Item
from gateway.core import certs
from gateway.core import schema as schemas

if TYPE_CHECKING:
    from gateway.admin.context import AdminContext

#: the attribute of each auth plugin that must be unique among consumers (APISIX 3.18)
UNIQUE_AUTH_ATTRS = {"key-auth": "key", "basic-auth": "username", "jwt-auth": "key",
                     "hmac-auth": "key_id", "ldap-auth": "user_dn"}


# --------------------------------------------------------------------------- shared checks
def check_schema(kind: str, conf: Any, manager: str | None = None) -> None:
    problem = schemas.validate(kind, conf, manager)
    if problem:
        raise Fail(400, problem)


def check_plugins(ctx: AdminContext, plugins: Any, schema_type: str = "schema",
                  lead: str = "") -> None:
    if not plugins:
        return
    if ctx.plugins is None:
        raise Fail(400, lead + "unknown plugin [%s]" % next(iter(plugins)))
    problem = ctx.plugins.check_plugins(plugins, schema_type)
    if problem:
        raise Fail(400, lead + problem)


def check_upstream_refs(ctx: AdminContext, conf: dict) -> None:
    if conf.get("upstream_id") is not None:
        ctx.fetch("upstreams", conf["upstream_id"], "upstream info by upstream id")
    upstream = conf.get("upstream") if isinstance(conf.get("upstream"), dict) else conf
    tls = upstream.get("tls")
    if isinstance(tls, dict) and tls.get("client_cert_id") is not None:
        ident = tls["client_cert_id"]
        item = ctx.fetch("ssls", ident, "ssl info by ssl id")
        if (item.value or {}).get("type") != "client":
            raise Fail(400, "failed to fetch ssl info by ssl id [%s], wrong ssl type" % ident)


def users_of(ctx: AdminContext, directories: tuple[str, ...], field: str, ident: str):
    """(singular word, id) of the first object in `directories` whose `field` is `ident`."""
    words = {"routes": "route", "services": "service", "stream_routes": "stream_route",
             "consumers": "consumer"}
    for directory in directories:
        for item in ctx.list(directory):
            if str(item.value.get(field)) == ident:
                owner = item.value.get("username") if directory == "consumers" \
                    else item.key.rsplit("/", 1)[1]
                return words[directory], owner
    return None


def traffic_split_users(ctx: AdminContext, ident: str):
    """(word, id) of an object whose traffic-split plugin sends traffic to upstream `ident`."""
    for directory, word in (("routes", "route"), ("services", "service"),
                            ("plugin_configs", "plugin_config"), ("consumers", "consumer"),
                            ("consumer_groups", "consumer_group"),
                            ("global_rules", "global_rule")):
        for item in ctx.list(directory):
            split = (item.value.get("plugins") or {}).get("traffic-split") or {}
            for rule in split.get("rules") or ():
                for wu in rule.get("weighted_upstreams") or ():
                    if str(wu.get("upstream_id")) == ident:
                        return word, item.key.rsplit("/", 1)[1]
    return None


# --------------------------------------------------------------------------- bases
class Kind(Resource):
    """A resource checked against its own schema; `used_by` declares what protects a
    delete: (directories to look in, the referencing field, the start of APISIX's message)."""

    used_by: tuple[tuple[str, ...], str, str] | None = None

    def check(self, ctx, ident, conf):
        check_schema(self.name, conf)

    def delete_check(self, ctx, ident):
        if self.used_by is None:
            return
        directories, field, message = self.used_by
        user = users_of(ctx, directories, field, ident)
        if user:
            raise Fail(400, "%s, %s [%s] is still using it now" % ((message,) + user))


class PluginFields(Kind):
    """Kinds with `plugins`: each plugin conf is checked, and fields plugins mark
    `ENCRYPT_FIELDS` are encrypted at rest."""

    def check(self, ctx, ident, conf):
        super().check(ctx, ident, conf)
        check_plugins(ctx, conf.get("plugins"))

    def _fields(self, ctx: AdminContext, conf: dict, transform) -> dict:
        plugins = conf.get("plugins")
        if not ctx.encrypt_fields or ctx.plugins is None or not isinstance(plugins, dict):
            return conf
        for name, pconf in plugins.items():
            module = ctx.plugins.get(name)
            for path in getattr(module, "ENCRYPT_FIELDS", ()) if module else ():
                holder, leaf = pconf, path
                if "." in path:
                    head, leaf = path.split(".", 1)
                    holder = pconf.get(head) if isinstance(pconf, dict) else None
                if isinstance(holder, dict) and isinstance(holder.get(leaf), str):
                    holder[leaf] = transform(holder[leaf])
        return conf

    def to_storage(self, ctx: AdminContext, conf: dict) -> dict:
        return self._fields(ctx, conf, ctx.keyring.encrypt)

    def to_output(self, ctx: AdminContext, value: Any) -> Any:
        return self._fields(ctx, value, ctx.keyring.decrypt) if isinstance(value, dict) \
            else value

    def to_output_full(self, ctx: AdminContext, value: dict) -> dict:
        return self.to_output(ctx, super().to_output_full(ctx, value))


# --------------------------------------------------------------------------- kinds
class Routes(PluginFields):
    name, kind = "routes", "route"

    def check(self, ctx, ident, conf):
        check_schema("routes", conf)
        check_upstream_refs(ctx, conf)
        if conf.get("service_id") is not None:
            ctx.fetch("services", conf["service_id"], "service info by service id")
        if conf.get("plugin_config_id") is not None:
            ctx.fetch("plugin_configs", conf["plugin_config_id"],
                      "plugin config info by plugin config id")
        check_plugins(ctx, conf.get("plugins"))


class Services(PluginFields):
    name, kind = "services", "service"
    used_by = (("routes", "stream_routes"), "service_id",
               "can not delete this service directly")

    def check(self, ctx, ident, conf):
        check_schema("services", conf)
        check_upstream_refs(ctx, conf)
        check_plugins(ctx, conf.get("plugins"))


class Upstreams(Kind):
    name, kind = "upstreams", "upstream"
    used_by = (("routes", "services"), "upstream_id", "can not delete this upstream")

    def check(self, ctx, ident, conf):
        check_schema("upstreams", conf)
        check_upstream_refs(ctx, conf)

    def delete_check(self, ctx, ident):
        super().delete_check(ctx, ident)
        user = traffic_split_users(ctx, ident)
        if user:
            raise Fail(400, "can not delete this upstream, plugin in %s [%s] is still using it "
                            "now" % user)


def check_unique_auth(ctx: AdminContext, plugins: Any, owner_key: str) -> None:
    """APISIX 3.18: an auth key (key-auth `key`, basic-auth `username`...) belongs to one
    consumer or credential; `owner_key` is the key being written. A consumer does not
    conflict with itself or its own credentials, a credential only with itself. APISIX's
    words: `duplicate key of plugin key-auth found with consumer: jack` or `... found with
    credential: c1 of consumer: jack`."""
    if not isinstance(plugins, dict):
        return
    wanted = {(name, plugins[name].get(attr)) for name, attr in UNIQUE_AUTH_ATTRS.items()
              if isinstance(plugins.get(name), dict)
              and isinstance(plugins[name].get(attr), str)}
    if not wanted:
        return
    base = "/apisix/consumers/"
    writing_consumer = "/credentials/" not in owner_key
    own_name = owner_key[len(base):].split("/", 1)[0]
    for item in ctx.store.list(base):
        if item.key == owner_key or not isinstance(item.value, dict):
            continue
        parts = item.key[len(base):].split("/")
        if writing_consumer and parts[0] == own_name:
            continue
        for name, value in wanted:
            other = (item.value.get("plugins") or {}).get(name)
            if isinstance(other, dict):
                attr = UNIQUE_AUTH_ATTRS[name]
                if ctx.keyring.decrypt(other.get(attr)) == value:
                    owner = "consumer: " + parts[0]
                    if len(parts) == 3 and parts[1] == "credentials":
                        owner = "credential: %s of consumer: %s" % (parts[2], parts[0])
                    raise Fail(400, "duplicate %s of plugin %s found with %s"
                               % (attr, name, owner))


class Consumers(PluginFields):
    name, kind = "consumers", "consumer"
    unsupported = frozenset({"POST", "PATCH"})
    has_id = False

    def ident(self, req: AdminRequest):
        segs = req.segments[1:]
        return (segs[0] if segs else None), ""

    def check_conf(self, ctx, ident, conf, need_id, allow_time=False):
        if conf is None:
            raise Fail(400, "missing configurations")
        if isinstance(conf, dict) and ident is not None and conf.get("username") is None:
            conf["username"] = ident
        return super().check_conf(ctx, ident, conf, need_id, allow_time)

    def check(self, ctx, ident, conf):
        check_schema("consumers", conf)
        if ident is not None and ident != conf.get("username"):
            raise Fail(400, "wrong username")
        check_plugins(ctx, conf.get("plugins"), "consumer", "invalid plugins configuration: ")
        if conf.get("group_id") is not None:
            ctx.fetch("consumer_groups", conf["group_id"],
                      "consumer group info by consumer group id")
        check_unique_auth(ctx, conf.get("plugins"), "/apisix/consumers/" + conf["username"])

    def key_of(self, conf):
        return conf["username"]


class Credentials(PluginFields):
    """/consumers/{username}/credentials[/{id}]"""

    name, kind = "credentials", "credential"
    unsupported = frozenset({"POST", "PATCH"})

    def base(self, req: AdminRequest) -> str:
        return "/apisix/consumers/%s/credentials" % req.segments[1]

    def ident(self, req: AdminRequest):
        segs = req.segments[3:]
        return (segs[0] if segs else None), "/".join(segs[1:])

    def check(self, ctx, ident, conf):
        check_schema("credentials", conf)
        plugins = conf.get("plugins") or {}
        if ctx.plugins is not None:
            for name in plugins:
                module = ctx.plugins.get(name)
                if module is not None and getattr(module, "TYPE", None) != "auth":
                    raise Fail(400, "only supports auth type plugins in consumer credential")
        check_plugins(ctx, plugins, "consumer", "invalid plugins configuration: ")

    def put(self, ctx, req):
        username = req.segments[1]
        if ctx.store.get("/apisix/consumers/" + username) is None:
            raise Fail(404, "consumer not found")
        conf = req.json()
        if isinstance(conf, dict):
            ident, _ = self.ident(req)
            check_unique_auth(ctx, conf.get("plugins"),
                              "/apisix/consumers/%s/credentials/%s" % (username, ident))
        return super().put(ctx, req)


class ConsumerGroups(PluginFields):
    name, kind = "consumer_groups", "consumer group"
    unsupported = frozenset({"POST"})
    used_by = (("consumers",), "group_id", "can not delete this consumer group")


class Ssls(Resource):
    """Private keys are encrypted at rest and never shown."""

    name, kind = "ssls", "ssl"

    def check(self, ctx, ident, conf):
        check_schema("ssls", conf)
        problem = certs.check_ssl(conf, ctx.keyring.decrypt)
        if problem:
            raise Fail(400, problem)

    def to_storage(self, ctx, conf):
        if isinstance(conf.get("key"), str) and not certs.is_reference(conf["key"]):
            conf["key"] = ctx.keyring.encrypt(ctx.keyring.decrypt(conf["key"]))
        if isinstance(conf.get("keys"), list):
            conf["keys"] = [ctx.keyring.encrypt(ctx.keyring.decrypt(k))
                            if isinstance(k, str) and not certs.is_reference(k) else k
                            for k in conf["keys"]]
        return conf

    def to_output(self, ctx, value):
        if isinstance(value, dict):
            value.pop("key", None)
            value.pop("keys", None)
        return value


class GlobalRules(PluginFields):
    name, kind = "global_rules", "global rule"
    unsupported = frozenset({"POST"})

    def check(self, ctx, ident, conf):
        super().check(ctx, ident, conf)
        for item in ctx.list("global_rules"):
            other = item.key.rsplit("/", 1)[1]
            if other == str(ident):
                continue
            for name in conf.get("plugins") or {}:
                if name in (item.value.get("plugins") or {}):
                    raise Fail(400, "plugin '%s' already exists in global rule with id '%s'"
                               % (name, other))


class PluginConfigs(PluginFields):
    name, kind = "plugin_configs", "plugin config"
    unsupported = frozenset({"POST"})
    used_by = (("routes",), "plugin_config_id", "can not delete this plugin config")


class PluginMetadata(Resource):
    name, kind = "plugin_metadata", "plugin_metadata"
    unsupported = frozenset({"POST", "PATCH"})

    def check(self, ctx, ident, conf):
        if ctx.plugins is None:
            raise Fail(400, "invalid plugin name")
        conf.pop("id", None)            # checked without the id the resource injected
        problem = ctx.plugins.check_metadata(str(ident), conf)
        conf["id"] = ident
        if problem:
            raise Fail(400, problem)


class StreamRoutes(Resource):
    name, kind = "stream_routes", "stream route"
    unsupported = frozenset({"PATCH"})

    def handle(self, ctx, req):
        if not ctx.stream_enabled:
            raise Fail(400, "stream mode is disabled, can not add stream routes")
        return super().handle(ctx, req)

    def check(self, ctx, ident, conf):
        check_schema("stream_routes", conf)
        check_upstream_refs(ctx, conf)
        if conf.get("service_id") is not None:
            ctx.fetch("services", conf["service_id"], "service info by service id")
        check_plugins(ctx, conf.get("plugins"))

    def delete_check(self, ctx, ident):
        for item in ctx.list("stream_routes"):
            proto = item.value.get("protocol") or {}
            if str(proto.get("superior_id")) == ident:
                raise Fail(400, "can not delete this stream route directly, stream route [%s] "
                                "is still using it as superior_id" % item.key.rsplit("/", 1)[1])


class Protos(Kind):
    name, kind = "protos", "proto"
    unsupported = frozenset({"PATCH"})

    def delete_check(self, ctx, ident):
        for directory, word in (("routes", "route"), ("services", "service")):
            for item in ctx.list(directory):
                grpc = (item.value.get("plugins") or {}).get("grpc-transcode") or {}
                if str(grpc.get("proto_id")) == ident:
                    raise Fail(400, "can not delete this proto, %s [%s] is still using it now"
                               % (word, item.key.rsplit("/", 1)[1]))


class Secrets(Resource):
    """/secrets/{manager}/{id}; the stored id is "{manager}/{id}"."""

    name, kind = "secrets", "secret"
    unsupported = frozenset({"POST"})
    MANAGERS = ("vault", "aws", "gcp")

    def ident(self, req: AdminRequest):
        segs = req.segments[1:]
        if len(segs) < 2:
            return None, ""
        return segs[0] + "/" + segs[1], "/".join(segs[2:])

    def handle(self, ctx, req):
        segs = req.segments[1:]
        if segs and segs[0] not in self.MANAGERS:
            raise Fail(400, "invalid secret manager: %s" % segs[0])
        return super().handle(ctx, req)

    def list_filter(self, base: str, item: Item) -> bool:
        rest = item.key[len(base) + 1:]
        return rest.count("/") == 1 and isinstance(item.value, dict)

    def check(self, ctx, ident, conf):
        manager = str(ident).split("/", 1)[0] if ident else None
        check_schema("secrets", conf, manager)


RESOURCES: dict[str, Resource] = {r.name: r for r in (
    Routes(), Services(), Upstreams(), Consumers(), ConsumerGroups(), Ssls(), GlobalRules(),
    PluginConfigs(), PluginMetadata(), StreamRoutes(), Protos(), Secrets())}
CREDENTIALS = Credentials()
