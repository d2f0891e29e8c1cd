"""Standalone mode's config source: `conf/apisix.yaml`, watched by the master.

APISIX's file format (spec §5.4): top-level arrays `routes`, `services`, `upstreams`, ...,
optional `<kind>_conf_version` keys, and a final line `#END`. A consumer's credential is a
`consumers:` item with `id: "<username>/credentials/<id>"` and `plugins` (one auth plugin);
the top-level `plugins:` list (`- name: key-auth`) replaces config.yaml's enabled plugins
on the workers (gateway.worker.table) (a file without it is being
written and is ignored). `${{VAR}}` substitution applies to the text.

Every second the watcher stats the file; when it changed, the file is parsed and its objects
replace the snapshot. A broken file is logged with the reason and the last good config keeps
serving; an invalid object is logged and skipped, as APISIX does.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable
from typing import Any

import yaml

from gateway.config import ConfigError, substitute_env
from gateway.core import schema
from gateway.core.log import log

#: kinds that may appear at the top level of apisix.yaml, with how each item is keyed
KINDS = ("routes", "services", "upstreams", "consumers", "consumer_groups", "ssls",
         "global_rules", "plugin_configs", "plugin_metadata", "stream_routes", "protos",
         "secrets")
END_MARK = "#END"
POLL_INTERVAL = 1.0


class StandaloneError(Exception):
    """The file as a whole cannot be used (missing #END, YAML syntax, wrong shape)."""


#: libyaml's safe loader where PyYAML was built with it (4x faster on a 10k-route file)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(text: str, source: str = "apisix.yaml") -> tuple[dict[str, Any], list[str]]:
    """Objects keyed like etcd (``/apisix/routes/1``) and the list of per-item problems."""
    if not text.rstrip().endswith(END_MARK):
        raise StandaloneError("%s: missing the final #END line, file ignored" % source)
    try:
        text = substitute_env(text)
    except ConfigError as exc:
        raise StandaloneError("%s: %s" % (source, exc)) from None
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise StandaloneError("%s: invalid YAML: %s" % (source, exc)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise StandaloneError("%s: expected a mapping of resource lists at the top level" % source)
    return objects_of(data, source)


def objects_of(data: dict[str, Any], source: str) -> tuple[dict[str, Any], list[str]]:
    """APISIX's declarative layout (`routes: [...]`, ...) → objects keyed like etcd, and the
    per-item problems (those items are left out)."""
    objects: dict[str, Any] = {}
    problems: list[str] = []
    for kind, items in data.items():
        if kind.endswith("_conf_version"):
            continue
        if kind == "plugins":
            objects["/apisix/plugins"] = items
            continue
        if kind not in KINDS:
            problems.append("%s: unknown resource kind %r" % (source, kind))
            continue
        if items is None:
            continue
        if not isinstance(items, list):
            problems.append("%s: %s: expected a list" % (source, kind))
            continue
        for index, item in enumerate(items):
            key, problem = _item_key(kind, index, item)
            if problem is None:
                if kind == "consumers" and "/credentials/" in key:
                    # a credential (`id: "<username>/credentials/<id>"`), checked as one
                    problem = schema.check("credentials", {k: v for k, v in item.items()
                                                           if k != "id"})
                else:
                    problem = schema.check(kind, item)
            if problem is not None:
                problems.append("%s: %s[%d] (id %s) skipped: %s"
                                % (source, kind, index, _item_id(kind, item), problem))
                continue
            objects[key] = item
    return objects, problems


#: a consumer's credential among `consumers:` items (spec §2.1, standalone form)
CREDENTIAL_ID = re.compile(r"^[a-zA-Z0-9-_]+/credentials/[a-zA-Z0-9-_.]+$")


def _item_id(kind: str, item: Any) -> Any:
    if not isinstance(item, dict):
        return None
    if kind == "consumers":
        ident = item.get("id")
        if isinstance(ident, str) and "/credentials/" in ident:
            return ident
        return item.get("username")
    return item.get("id")


def _item_key(kind: str, index: int, item: Any) -> tuple[str, str | None]:
    if not isinstance(item, dict):
        return "", "expected an object"
    ident = _item_id(kind, item)
    if kind == "consumers" and isinstance(ident, str) and "/credentials/" in ident \
            and not CREDENTIAL_ID.match(ident):
        return "", "invalid credential id %r: expected <username>/credentials/<id>" % ident
    if ident is None or ident == "":
        if kind != "routes":
            return "", "missing %s" % ("username" if kind == "consumers" else "id")
        ident = index + 1
        item["id"] = str(ident)
    return "/apisix/%s/%s" % (kind, ident), None


def load_file(path: str) -> tuple[dict[str, Any], list[str]]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise StandaloneError("%s: %s" % (path, exc.strerror)) from None
    return parse(text, path)


class YamlSource:
    """Polls the file once per second and feeds changes to `on_objects(objects)`."""

    def __init__(self, path: str, on_objects: Callable[[dict[str, Any]], None]):
        self.path = path
        self.on_objects = on_objects
        self._stat: tuple | None = None
        self._digest: bytes | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load_now(self) -> bool:
        """Check the file once; True when a config was applied (or is unchanged and good)."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            if self._stat is not None or self._digest is None:
                log.error("standalone config %s: %s", self.path, exc.strerror)
            self._stat = None
            return False
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stat:
            return True
        self._stat = stamp
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except OSError as exc:
            log.error("standalone config %s: %s", self.path, exc.strerror)
            return False
        digest = hashlib.sha256(raw).digest()
        if digest == self._digest:
            return True
        try:
            objects, problems = parse(raw.decode("utf-8", "replace"), self.path)
        except StandaloneError as exc:
            log.error("%s; keeping the last good config", exc)
            return False
        for problem in problems:
            log.error("%s", problem)
        self._digest = digest
        self.on_objects(objects)
        log.info("standalone config loaded from %s: %d objects", self.path, len(objects))
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="yaml-source", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(POLL_INTERVAL):
            try:
                self.load_now()
            except Exception:
                log.exception("standalone config watcher failed")
