"""The bridge between our settings and gunicorn's arbiter.

gunicorn's Arbiter wants an "application" with a `cfg`; ours loads no WSGI app. It maps
config.yaml onto the few gunicorn settings the arbiter reads (worker count, worker class,
heartbeat timeout, graceful timeout, process name) and disables what we do not use (the
control socket). gunicorn's own log lines go to our error log through `ArbiterLog`.
"""

from __future__ import annotations

import logging

from gunicorn.app.base import BaseApplication

from gateway import config
from gateway.core.log import log

WORKER_CLASS = "gateway.worker.worker.GatewayWorker"


class GatewayApp(BaseApplication):
    def __init__(self, prefix: str, config_path: str | None, conf: dict):
        self.prefix = prefix
        self.config_path = config_path
        self.conf = conf
        #: write end of the pipe `bin/gateway start` waits on; None once start-up is reported
        self.ready_fd: int | None = None
        super().__init__(usage=None, prog="gateway")

    def load_config(self) -> None:
        conf = self.conf
        cfg = self.cfg
        cfg.set("worker_class", WORKER_CLASS)
        cfg.set("workers", config.worker_count(conf))
        cfg.set("timeout", int(config.parse_duration(
            conf["nginx_config"]["worker_heartbeat_timeout"])) or 30)
        cfg.set("graceful_timeout", max(1, round(config.parse_duration(
            conf["nginx_config"]["worker_shutdown_timeout"]))))
        cfg.set("proc_name", "gateway")
        cfg.set("logger_class", "gateway.master.app.ArbiterLog")
        cfg.set("control_socket_disable", True)

    def reload_conf(self) -> dict:
        """Re-read config.yaml; raises ConfigError and changes nothing when it is invalid."""
        conf = config.load(self.prefix, self.config_path)
        self.conf = conf
        self.do_load_config()
        return conf

    def restore(self, conf: dict) -> None:
        """Go back to a previous, known-good configuration (a reload that failed)."""
        self.conf = conf
        self.do_load_config()

    def load(self):  # pragma: no cover - gunicorn's WSGI loading is never used
        raise RuntimeError("the gateway loads no WSGI application")


class ArbiterLog:
    """gunicorn's logger interface, writing to our error log (nginx-style lines)."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def setup(self, cfg) -> None:
        self.cfg = cfg

    def critical(self, msg, *args, **kwargs) -> None:
        log.critical(msg, *args, **kwargs)

    def error(self, msg, *args, **kwargs) -> None:
        log.error(msg, *args, **kwargs)

    def warning(self, msg, *args, **kwargs) -> None:
        log.warning(msg, *args, **kwargs)

    def info(self, msg, *args, **kwargs) -> None:
        log.info(msg, *args, **kwargs)

    def debug(self, msg, *args, **kwargs) -> None:
        log.debug(msg, *args, **kwargs)

    def exception(self, msg, *args, **kwargs) -> None:
        log.exception(msg, *args, **kwargs)

    def log(self, lvl, msg, *args, **kwargs) -> None:
        log.log(lvl if isinstance(lvl, int) else logging.INFO, msg, *args, **kwargs)

    def access(self, *args, **kwargs) -> None:
        pass

    def reopen_files(self) -> None:
        from gateway.core import log as logmod
        logmod.reopen()

    def close_on_exec(self) -> None:
        pass
