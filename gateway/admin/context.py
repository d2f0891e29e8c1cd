"""What Admin API handlers need from the worker: the store, the plugins, settings, keyring."""

from __future__ import annotations

from typing import Any

from gateway import config
from gateway.admin.api import Fail
from gateway.admin.store import Item, Store, StoreError
from gateway.core.crypto import Keyring


class AdminContext:
    def __init__(self, conf: dict[str, Any], store: Store, plugins: Any):
        self.conf = conf
        self.store = store
        self._plugins = plugins
        self.keyring = Keyring.from_conf(conf)
        enc = (conf.get("apisix") or {}).get("data_encryption") or {}
        self.encrypt_fields = bool(enc.get("enable_encrypt_fields", True))
        prefix = str(conf["deployment"]["etcd"].get("prefix") or "/apisix")
        self.etcd_prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.stream_enabled = "stream" in str((conf.get("apisix") or {}).get("proxy_mode")
                                              or "http")
        self.server_header = config.server_header(conf).decode()
        #: API-driven standalone mode: the config is one document at /apisix/admin/configs
        self.api_standalone = config.config_provider(conf) == "yaml"

    @property
    def plugins(self) -> Any:
        """The plugin registry (gateway.core.plugins.PluginSet) as it is now, or None; given
        as a callable it is asked each time (plugins/reload swaps it)."""
        return self._plugins() if callable(self._plugins) else self._plugins

    def display_key(self, key: str) -> str:
        """A canonical key (/apisix/routes/1) as etcd holds it, with the configured prefix."""
        return self.etcd_prefix + key[len("/apisix"):]

    def fetch(self, directory: str, ident: Any, what: str) -> Item:
        """The object a reference points at; APISIX's error when it is missing:
        `failed to fetch upstream info by upstream id [9], response code: 404`."""
        try:
            item = self.store.get("/apisix/%s/%s" % (directory, ident))
        except StoreError as exc:
            raise Fail(503, "failed to fetch %s [%s]: %s" % (what, ident, exc)) from None
        if item is None:
            raise Fail(400, "failed to fetch %s [%s], response code: 404" % (what, ident))
        return item

    def list(self, directory: str) -> list[Item]:
        """Every object directly under /apisix/<directory>/ (no placeholders)."""
        base = "/apisix/%s/" % directory
        return [it for it in self.store.list(base)
                if isinstance(it.value, dict) and it.key[len(base):]]
