"""API-driven standalone mode (APISIX 3.13+): `deployment.role: traditional` with
`role_traditional.config_provider: yaml`.

There is no etcd and no file: the whole configuration lives in the master's memory and is
replaced as one document through `PUT /apisix/admin/configs` (ADC's standalone backend and the
ingress controller use this). Workers validate the document (they hold the plugins) and hand
it to the master through the admin bridge; the master keeps it, turns it into objects like
the standalone file source does, and publishes the snapshot. `GET` returns the document with
its `<kind>_conf_version` keys and the `X-Last-Modified`/`X-Digest` metadata. As in APISIX the
document is not persisted: a restart starts empty.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

from gateway.core.log import log
from gateway.master.yaml_source import objects_of

#: metadata kept with the document (not resources)
METADATA = ("X-Last-Modified", "X-Digest")


class ConfigsSource:
    def __init__(self, on_objects: Callable[[dict[str, Any]], None]):
        self.on_objects = on_objects
        self._config: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def load_now(self) -> bool:
        with self._lock:
            config = self._config
        if config is None:
            self.on_objects({})
        return True

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def get(self) -> dict[str, Any] | None:
        with self._lock:
            return self._config

    def put(self, config: dict[str, Any]) -> None:
        """Make `config` (already validated by the worker) the whole configuration."""
        data = {k: copy.deepcopy(v) for k, v in config.items() if k not in METADATA}
        objects, problems = objects_of(data, "PUT /apisix/admin/configs")
        for problem in problems:
            log.error("%s", problem)
        with self._lock:
            self._config = config
            self.on_objects(objects)
