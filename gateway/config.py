"""Load, merge and validate the node settings (conf/config.yaml over conf/config-default.yaml).

Every setting is declared once, with its default, in conf/config-default.yaml; the user file
only overrides. Validation is derived from that file rather than from a second schema that
could drift: a key absent from the defaults is unknown, and a value must have its default's
type. The few settings whose default is null or whose type is a union (listeners, durations,
sizes, enums) get an explicit rule in ``_RULES``; free-form sections are listed in ``_OPEN``.
A bad setting stops the node with one message naming its key path. Only what the user wrote
is checked, in file order, and the first error wins, so the message is stable between runs.

The helpers at the end turn raw settings into the values the master and workers use, so no
other module parses "60s" or the shapes of node_listen itself.
"""

from __future__ import annotations

import os
import re
import secrets
import string
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, NoReturn

import yaml

import gateway

__all__ = [
    "ConfigError", "substitute_env", "load", "listen_addresses", "ssl_listen_addresses",
    "worker_count", "parse_duration", "parse_size", "parse_buffers", "resolve_path",
    "config_provider", "server_header",
]

#: conf/ of the installed tree, beside the gateway package.
INSTALL_CONF = Path(gateway.__file__).resolve().parent.parent / "conf"


class ConfigError(Exception):
    """A setting or settings file is wrong; the message names the file or the key path."""


# --- environment variables ----------------------------------------------------------------

_ENV_REF = re.compile(r"\$\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?::=\s*(.*?)\s*)?\}\}")


def substitute_env(text: str, source: str = "<string>") -> str:
    """Replace ``${{VAR}}`` and ``${{VAR:=default}}`` with environment values, as APISIX does.

    Works on the text before YAML parsing, so ``port: ${{PORT}}`` becomes an int. Comment lines
    are left alone: a commented-out example must not require its variable. A variable set to
    the empty string counts as set. ``source`` names the file in error messages.
    """
    def replace(match: re.Match[str]) -> str:
        line_start = text.rfind("\n", 0, match.start()) + 1
        if text[line_start:match.start()].lstrip().startswith("#"):
            return match.group(0)
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name, default)
        if value is None:
            line = text.count("\n", 0, match.start()) + 1
            raise ConfigError(f"{source}:{line}: environment variable {name} is not set")
        return value

    return _ENV_REF.sub(replace, text)


# --- value parsers ------------------------------------------------------------------------

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"(\d+)([kmg]?)", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_duration(value: Any) -> float:
    """Seconds from an nginx time: 60, "60", "60s", "500ms", "2m", "1h", "1m30s"."""
    if _kind(value) in ("int", "number") and 0 <= value < float("inf"):
        return float(value)
    text = value.strip() if isinstance(value, str) else ""
    if _NUMBER.fullmatch(text):
        return float(text)
    if _DURATION.fullmatch(text):
        return sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART.findall(text))
    raise ConfigError(f"invalid duration: {value!r}")


def parse_size(value: Any) -> int:
    """Bytes from an nginx size: 0, 4096, "4096", "8k", "1m", "1G"."""
    if _kind(value) == "int" and value >= 0:
        return int(value)
    match = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ConfigError(f"invalid size: {value!r}")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


def parse_buffers(value: Any) -> tuple[int, int]:
    """(count, bytes) from nginx's "number size" form: "4 8k" -> (4, 8192)."""
    parts = value.split() if isinstance(value, str) else []
    if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) > 0:
        size = parse_size(parts[1])
        if size > 0:
            return int(parts[0]), size
    raise ConfigError(f"invalid buffers: {value!r}")


# --- loading and merging ------------------------------------------------------------------


def load(prefix: str, config_path: str | None = None) -> dict[str, Any]:
    """The effective settings: defaults deep-merged with the user file, after validation.

    Defaults come from PREFIX/conf/config-default.yaml when the prefix has its own copy, else
    from the install's conf/. The user file is ``config_path`` or PREFIX/conf/config.yaml; a
    missing PREFIX/conf/config.yaml means no overrides, but a ``config_path`` the user named
    must exist.
    """
    local_defaults = Path(prefix) / "conf" / "config-default.yaml"
    defaults = _read_yaml(local_defaults if local_defaults.is_file()
                          else INSTALL_CONF / "config-default.yaml", env=False)
    user_path = Path(config_path) if config_path else Path(prefix) / "conf" / "config.yaml"
    if user_path.is_file():
        user = _read_yaml(user_path, env=True)
    elif config_path:
        raise ConfigError(f"{user_path}: no such file")
    else:
        user = {}
    _check(user, defaults, "")
    return _merge(defaults, user)


def _read_yaml(path: Path, env: bool) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    if env:
        text = substitute_env(text, str(path))
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def _merge(base: Any, override: Any) -> Any:
    """``override`` over ``base``: mappings merge key by key, anything else replaces.

    A null over a mapping keeps the mapping: a section whose keys are all commented out
    (``apisix:`` alone, which YAML reads as null) means "no changes", not "delete". A null over
    anything else is kept (it means "unset"). Neither input is modified.
    """
    if not isinstance(base, dict) or not (override is None or isinstance(override, dict)):
        return override
    override = override or {}
    merged = {key: _merge(value, override[key]) if key in override else value
              for key, value in base.items()}
    merged.update((key, value) for key, value in override.items() if key not in base)
    return merged


# --- validation ---------------------------------------------------------------------------

Rule = Callable[[Any, str], None]


def _fail(path: str, message: str) -> NoReturn:
    raise ConfigError(f"{path}: {message}")


def _kind(value: Any) -> str:
    """The type name used in messages; a bool is not an int here, unlike in Python."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "list", dict: "mapping"}.get(type(value), type(value).__name__)


def _is_open(path: str) -> bool:
    return any(fnmatchcase(path, pattern) for pattern in _OPEN)


def _check(value: Any, default: Any, path: str) -> None:
    """Check a user ``value`` at ``path`` by its rule, else (unless open) by its default."""
    rule = _RULES.get(path)
    if rule is not None:
        rule(value, path)
    elif default is not None and not _is_open(path):
        _check_shape(value, default, path)


def _check_shape(value: Any, default: Any, path: str) -> None:
    """Same type as ``default``; a mapping's keys must exist there, a list's items share a type."""
    if isinstance(default, dict):
        if value is None:
            return  # an empty section: see _merge
        if not isinstance(value, dict):
            _fail(path, "expected a mapping")
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in default and sub not in _RULES and not _is_open(sub):
                _fail(sub, "unknown key")
            _check(item, default.get(key), sub)
    elif isinstance(default, list):
        if not isinstance(value, list):
            _fail(path, "expected a list")
        kinds = {_kind(item) for item in default}
        for index, item in enumerate(value):
            if len(kinds) == 1 and _kind(item) not in kinds:
                _fail(f"{path}[{index}]", f"expected {next(iter(kinds))}")
    elif _kind(value) != _kind(default) and (_kind(default), _kind(value)) != ("number", "int"):
        _fail(path, f"expected {_kind(default)}")


def _enum(*choices: str) -> Rule:
    def rule(value: Any, path: str) -> None:
        if value not in choices:
            _fail(path, "expected one of " + ", ".join(choices))
    return rule


def _nullable(rule: Rule) -> Rule:
    def nullable(value: Any, path: str) -> None:
        if value is not None:
            rule(value, path)
    return nullable


def _string(value: Any, path: str) -> None:
    if not isinstance(value, str):
        _fail(path, "expected string")


def _non_negative_int(value: Any, path: str) -> None:
    if _kind(value) != "int" or value < 0:
        _fail(path, "expected a non-negative int")


def _strings(value: Any, path: str) -> None:
    if not isinstance(value, list):
        _fail(path, "expected a list of strings")
    for index, item in enumerate(value):
        _string(item, f"{path}[{index}]")


def _non_empty_strings(value: Any, path: str) -> None:
    _strings(value, path)
    if not value:
        _fail(path, "expected at least one entry")


def _port(value: Any, path: str) -> None:
    if _kind(value) != "int" or not 0 < value < 65536:
        _fail(path, "expected a port number (1-65535)")


def _shaped(example: dict[str, Any], required: tuple[str, ...] = ()) -> Rule:
    """A mapping checked against ``example`` (keys and their types) like a defaults section."""
    def rule(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            _fail(path, "expected a mapping")
        _check_shape(value, example, path)
        for key in required:
            if key not in value:
                _fail(f"{path}.{key}", "required")
    return rule


def _listeners(flags: tuple[str, ...], scalar_ok: bool) -> Rule:
    """node_listen / ssl.listen: [int] + list of (int | {ip?, port, <boolean flags>})."""
    item_shape: dict[str, Any] = {"ip": "", "port": 0, **dict.fromkeys(flags, False)}

    def rule(value: Any, path: str) -> None:
        if scalar_ok and _kind(value) == "int":
            return _port(value, path)
        if not isinstance(value, list):
            _fail(path, "expected int or a list of ports and {ip, port}")
        for index, item in enumerate(value):
            where = f"{path}[{index}]"
            if isinstance(item, dict) and "port" in item:
                _check_shape(item, item_shape, where)
                _port(item["port"], f"{where}.port")
            elif _kind(item) == "int":
                _port(item, where)
            else:
                _fail(where, "expected int or {ip, port}")
    return rule


def _worker_processes(value: Any, path: str) -> None:
    if value != "auto" and (_kind(value) != "int" or value < 1):
        _fail(path, 'expected "auto" or a positive int')


def _parsed_by(parser: Callable[[Any], object], what: str) -> Rule:
    def rule(value: Any, path: str) -> None:
        try:
            parser(value)
        except ConfigError:
            _fail(path, f"expected {what}")
    return rule


def _on_off(value: Any, path: str) -> None:
    if not isinstance(value, bool) and value not in ("on", "off"):
        _fail(path, 'expected "on" or "off"')


def _admin_keys(value: Any, path: str) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        _fail(path, "expected a list of {name, key, role}")
    item_rule = _shaped({"name": "", "key": "", "role": ""}, required=("name", "key", "role"))
    for index, item in enumerate(value):
        item_rule(item, f"{path}[{index}]")
        _enum("admin", "viewer")(item["role"], f"{path}[{index}].role")


_DURATIONS = ("apisix.proxy_cache.cache_ttl", "nginx_config.worker_shutdown_timeout",
              "nginx_config.worker_heartbeat_timeout",
              "nginx_config.http.keepalive_timeout", "nginx_config.http.client_header_timeout",
              "nginx_config.http.client_body_timeout", "nginx_config.http.send_timeout",
              "nginx_config.http.upstream.keepalive_timeout")
_SIZES = ("nginx_config.http.access_log_buffer", "nginx_config.http.client_max_body_size",
          "nginx_config.http.client_header_buffer_size")
_OPTIONAL_STRINGS = ("apisix.server_version", "apisix.ssl.fallback_sni",
                     "deployment.admin.admin_api_mtls.admin_ssl_cert",
                     "deployment.admin.admin_api_mtls.admin_ssl_cert_key",
                     "deployment.admin.admin_api_mtls.admin_ssl_ca_cert",
                     "deployment.etcd.user", "deployment.etcd.password",
                     "deployment.etcd.tls.cert", "deployment.etcd.tls.key",
                     "deployment.etcd.tls.sni", "deployment.etcd.snapshot_file")

#: Keys whose default is null or whose type is a union; a rule checks its whole subtree.
_RULES: dict[str, Rule] = {
    **dict.fromkeys(_DURATIONS, _parsed_by(parse_duration, 'a duration such as "60s" or "500ms"')),
    **dict.fromkeys(_SIZES, _parsed_by(parse_size, 'a size such as 0, "8k" or "1m"')),
    **dict.fromkeys(_OPTIONAL_STRINGS, _nullable(_string)),
    "apisix.node_listen": _listeners(("enable_http2",), scalar_ok=True),
    "apisix.router.http": _enum("radixtree_uri", "radixtree_uri_with_parameter",
                                "radixtree_host_uri"),
    "apisix.router.ssl": _enum("radixtree_sni"),
    "apisix.proxy_mode": _enum("http", "stream", "http&stream"),
    "apisix.dns_resolver": _nullable(_strings),
    "apisix.dns_resolver_valid": _nullable(_non_negative_int),
    "apisix.ssl.listen": _listeners(("enable_http3", "enable_http2"), scalar_ok=False),
    "apisix.status": _nullable(_shaped({"ip": "", "port": 0})),
    "apisix.trusted_addresses": _nullable(_strings),
    "apisix.extra_plugin_paths": _strings,
    "nginx_config.error_log_level": _enum("debug", "info", "notice", "warn", "error", "crit",
                                          "alert", "emerg"),
    "nginx_config.worker_processes": _worker_processes,
    "nginx_config.stream.access_log_format_escape": _enum("default", "json", "none"),
    "nginx_config.http.access_log_format_escape": _enum("default", "json", "none"),
    "nginx_config.http.large_client_header_buffers": _parsed_by(
        parse_buffers, '"<number> <size>" such as "4 8k"'),
    "nginx_config.http.underscores_in_headers": _on_off,
    "nginx_config.http.real_ip_recursive": _on_off,
    "deployment.role": _enum("traditional", "data_plane", "control_plane"),
    "deployment.role_traditional.config_provider": _enum("etcd", "yaml"),
    "deployment.role_data_plane.config_provider": _enum("etcd", "yaml", "json"),
    "deployment.role_control_plane.config_provider": _enum("etcd"),
    "deployment.admin.admin_key": _admin_keys,
    "deployment.admin.allow_admin": _nullable(_strings),
    "deployment.etcd.host": _non_empty_strings,
}

#: Free-form sections (glob patterns over key paths): anything at or below them is accepted.
_OPEN: tuple[str, ...] = (
    "plugin_attr.*", "discovery", "ext-plugin", "wasm", "xrpc", "apisix.stream_proxy",
    "nginx_config.*_snippet", "nginx_config.meta", "nginx_config.*lua_shared_dict",
)


# --- derived values -----------------------------------------------------------------------


def _addresses(entries: Any, ipv6: bool) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for entry in entries if isinstance(entries, list) else [entries]:
        if isinstance(entry, dict):
            ip, port = str(entry.get("ip") or "0.0.0.0").strip("[]"), int(entry["port"])
        else:
            ip, port = "0.0.0.0", int(entry)
        for address in [(ip, port)] + ([("::", port)] if ipv6 and ip == "0.0.0.0" else []):
            if address not in found:
                found.append(address)
    return found


def listen_addresses(conf: dict[str, Any]) -> list[tuple[str, int]]:
    """Proxy listeners from apisix.node_listen, in order; ("::", port) follows each 0.0.0.0.

    Whoever binds "::" must set IPV6_V6ONLY, or it collides with the 0.0.0.0 socket.
    """
    if (conf.get("deployment") or {}).get("role") == "control_plane":
        return []          # a control plane serves the Admin API only, no traffic
    apisix = conf["apisix"]
    return _addresses(apisix["node_listen"], bool(apisix.get("enable_ipv6")))


def ssl_listen_addresses(conf: dict[str, Any]) -> list[tuple[str, int]]:
    """TLS proxy listeners from apisix.ssl.listen; none when apisix.ssl.enable is false."""
    apisix = conf["apisix"]
    if not apisix["ssl"].get("enable") or \
            (conf.get("deployment") or {}).get("role") == "control_plane":
        return []
    return _addresses(apisix["ssl"]["listen"], bool(apisix.get("enable_ipv6")))


def admin_enabled(conf: dict[str, Any]) -> bool:
    """The Admin API runs where this node may write the config: roles traditional and
    control_plane with etcd, and traditional with yaml (API-driven standalone, where only
    /apisix/admin/configs changes it). A data plane only reads."""
    deployment = conf["deployment"]
    provider = config_provider(conf)
    # traditional + yaml is APISIX's API-driven standalone mode: /apisix/admin/configs
    writable = provider == "etcd" or (deployment["role"] == "traditional" and provider == "yaml")
    return deployment["role"] in ("traditional", "control_plane") and writable \
        and bool(deployment.get("admin")) \
        and conf["apisix"].get("enable_admin", True) is not False


def admin_address(conf: dict[str, Any]) -> tuple[str, int] | None:
    """The Admin API listener (deployment.admin.admin_listen), or None when there is none."""
    if not admin_enabled(conf):
        return None
    listen = conf["deployment"]["admin"].get("admin_listen") or {}
    return str(listen.get("ip") or "0.0.0.0").strip("[]"), int(listen.get("port") or 9180)


_EMPTY_KEY_LINE = re.compile(r"""^(\s*(?:-\s*)?key:[ \t]*)(?:""|''|)[ \t]*$""", re.M)


#: admin keys published in APISIX's docs and configs over the years: never on an open port
WELL_KNOWN_ADMIN_KEYS = frozenset(("edd1c9f034335f136f87ad84b625c8f1",
                                   "4054f7cf07e344346cd3f287985e76a2"))


def ensure_admin_key(prefix: str, config_path: str | None, conf: dict[str, Any]) -> list[str]:
    """An admin key left empty gets a random 32-letter key at start, written back into the
    user's config.yaml, as APISIX does (so it is never a known default). Changes `conf`;
    returns the names of the keys it generated. A well-known published key on an Admin API
    listener that is not loopback-only is refused (ConfigError)."""
    if not admin_enabled(conf):
        return []
    admin = conf["deployment"]["admin"]
    keys = admin.get("admin_key")
    if not admin.get("admin_key_required", True) or not keys:
        return []
    ip = (admin_address(conf) or ("127.0.0.1", 0))[0]
    loopback = ip.startswith("127.") or ip in ("::1", "localhost")
    for entry in keys:
        if entry.get("key") in WELL_KNOWN_ADMIN_KEYS and not loopback:
            raise ConfigError("deployment.admin.admin_key: the key of %r is a well-known "
                              "published key; it is refused on the Admin API listener %s: set "
                              "a key of your own" % (entry.get("name"), ip))
    empty = [k for k in keys if not k.get("key")]
    if not empty:
        return []
    path = Path(config_path) if config_path else Path(prefix) / "conf" / "config.yaml"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if len(_EMPTY_KEY_LINE.findall(text)) < len(empty):
        raise ConfigError("deployment.admin.admin_key: the key of %r is empty; set one in %s "
                          "(or admin_key: null to run without an admin key)"
                          % (empty[0].get("name"), path))
    for entry in empty:
        entry["key"] = "".join(secrets.choice(string.ascii_letters) for _ in range(32))
        text = _EMPTY_KEY_LINE.sub(lambda m, k=entry["key"]: m.group(1) + k, text, count=1)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return [str(entry.get("name")) for entry in empty]


def control_address(conf: dict[str, Any]) -> tuple[str, int] | None:
    """The Control API listener (apisix.control), None when apisix.enable_control is off."""
    apisix = conf["apisix"]
    if not apisix.get("enable_control", True):
        return None
    control = apisix.get("control") or {}
    return str(control.get("ip") or "127.0.0.1").strip("[]"), int(control.get("port") or 9090)


def prometheus_address(conf: dict[str, Any]) -> tuple[str, int] | None:
    """The metrics export listener (plugin_attr.prometheus.export_addr), None when the
    prometheus plugin is not enabled or enable_export_server is off."""
    if "prometheus" not in (conf.get("plugins") or ()):
        return None
    attr = (conf.get("plugin_attr") or {}).get("prometheus") or {}
    if attr.get("enable_export_server", True) is False:
        return None
    addr = attr.get("export_addr") or {}
    return str(addr.get("ip") or "127.0.0.1").strip("[]"), int(addr.get("port") or 9091)


def worker_count(conf: dict[str, Any]) -> int:
    """nginx_config.worker_processes; "auto" = the CPUs this process may run on, as nginx does."""
    value = conf["nginx_config"]["worker_processes"]
    if value != "auto":
        return int(value)
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def resolve_path(prefix: str, path: str) -> str:
    """A settings path as nginx reads it: relative paths are under the prefix."""
    return path if os.path.isabs(path) else os.path.join(prefix, path)


def config_provider(conf: dict[str, Any]) -> str:
    """Where config objects come from ("etcd", "yaml" or "json"), given deployment.role."""
    deployment = conf["deployment"]
    role = deployment["role"]
    if role == "control_plane":
        return "etcd"
    return str(deployment[f"role_{role}"]["config_provider"])


def server_header(conf: dict[str, Any]) -> bytes:
    """The Server header: APISIX/<version>, or bare APISIX when server tokens are off."""
    apisix = conf["apisix"]
    if not apisix.get("enable_server_tokens", True):
        return b"APISIX"
    return b"APISIX/" + str(apisix.get("server_version") or gateway.APISIX_VERSION).encode()
