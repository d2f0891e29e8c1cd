"""serverless-post-function: ``serverless-pre-function`` run late (priority -2000); see
plugins/serverless_pre_function.py for the conf and the calling convention."""

from __future__ import annotations

from typing import Any

from plugins.serverless_pre_function import (  # noqa: F401 - the shared implementation
    PHASE_NAMES, SCHEMA, Functions, _call, _notify, body_filter, check_schema)

NAME = "serverless-post-function"
PRIORITY = -2000
VERSION = 0.1


def prepare(conf: dict[str, Any]) -> Functions:
    return Functions(conf, NAME)


rewrite = access = before_proxy = _call
header_filter = log = _notify
