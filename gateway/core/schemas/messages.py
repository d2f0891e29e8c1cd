"""jsonschema errors in APISIX's words (api7/jsonschema wording, spec §9).

APISIX stops at the first failing keyword and nests the reason in the path that led there:
`property "upstream" validation failed: property "nodes" validation failed: ...`. We take the
first error jsonschema yields (the schemas order their keys like APISIX's validator) and
rebuild that chain from the error's schema path.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import jsonschema

#: api7/jsonschema's anyOf message (it appends the `required` lists when the branches have them)
ANYOF_MESSAGE = "object matches none of the requireds"


def lua_type(value: Any) -> str:
    """The Lua type name APISIX's validator reports for a decoded JSON value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (dict, list)):
        return "table"
    return "userdata"  # JSON null decodes to a cjson.null userdata


def quote(text: Any) -> str:
    """Lua's %q: double quotes, with backslash, quote and newline escaped."""
    text = str(text)
    return '"{}"'.format(text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\\n"))


def number(value: Any) -> str:
    """A number as LuaJIT prints it (2.0 → 2)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _first_equal_pair(items: list[Any]) -> tuple[int, int]:
    for i, a in enumerate(items):
        for j in range(i + 1, len(items)):
            if _canonical(a) == _canonical(items[j]):
                return i + 1, j + 1
    return 0, 0


def _leaf(error: jsonschema.ValidationError) -> str:
    """The message of the keyword that failed, without the path leading to it."""
    kw, arg, inst = error.validator, error.validator_value, error.instance
    if kw == "type":
        expected = ("one of " + ", ".join(arg)) if isinstance(arg, list) else arg
        return f"wrong type: expected {expected}, got {lua_type(inst)}"
    if kw == "required":
        missing = [name for name in arg if name not in inst]
        return f"property {quote(missing[0] if missing else arg[0])} is required"
    if kw == "additionalProperties":
        allowed = error.schema.get("properties", {})
        extra = [k for k in inst if k not in allowed]
        return "additional properties forbidden, found %s" % (extra[0] if extra else "")
    if kw == "minLength":
        return f"string too short, expected at least {arg}, got {len(inst)}"
    if kw == "maxLength":
        return f"string too long, expected at most {arg}, got {len(inst)}"
    if kw == "pattern":
        return f"failed to match pattern {quote(arg)} with {quote(inst)}"
    ranges = {"minimum": "at least", "maximum": "at most",
              "exclusiveMinimum": "greater than", "exclusiveMaximum": "smaller than"}
    if kw in ranges:
        return f"expected {number(inst)} to be {ranges[kw]} {number(arg)}"
    if kw == "multipleOf":
        return f"expected {number(inst)} to be a multiple of {number(arg)}"
    if kw == "minItems":
        return f"expect array to have at least {arg} items"
    if kw == "maxItems":
        return f"expect array to have at most {arg} items"
    if kw == "uniqueItems":
        first, second = _first_equal_pair(inst)
        return f"expected unique items but items {first} and {second} are equal"
    if kw == "minProperties":
        return f"expect object to have at least {arg} properties"
    if kw == "maxProperties":
        return f"expect object to have at most {arg} properties"
    if kw == "enum":
        return "matches none of the enum values"
    if kw == "const":
        return "failed to check const value"
    if kw == "anyOf":
        requires = [json.dumps(sub["required"], separators=(",", ":"))
                    for sub in arg if isinstance(sub, dict) and "required" in sub]
        return ANYOF_MESSAGE + (": " + " or ".join(requires) if requires else "")
    if kw == "oneOf":
        matched = [i + 1 for i, sub in enumerate(arg)
                   if jsonschema.Draft7Validator(sub).is_valid(inst)]
        if len(matched) >= 2:
            return ("value should match only one schema, but matches both schemas "
                    f"{matched[0]} and {matched[1]}")
        return "value should match only one schema, but matches none"
    if kw == "not":
        return "value wasn't supposed to match schema"
    if kw == "format" and arg in ("ipv4", "ipv6"):
        return f"expect valid {arg} address but got: {inst}"
    return error.message


def translate(error: jsonschema.ValidationError) -> str:
    """The APISIX message for one jsonschema error, path included."""
    schema_path = deque(error.relative_schema_path)
    inst_path = deque(error.relative_path)
    prefix = []
    while len(schema_path) > 1:
        kw = schema_path.popleft()
        if kw == "properties":
            prefix.append(f"property {quote(schema_path.popleft())} validation failed: ")
            inst_path.popleft()
        elif kw == "items":
            if schema_path and isinstance(schema_path[0], int):
                schema_path.popleft()
            prefix.append(f"failed to validate item {inst_path.popleft() + 1}: ")
        elif kw == "patternProperties":
            pattern = schema_path.popleft()
            prefix.append(f"failed to validate {inst_path.popleft()} (matching {quote(pattern)}): ")
        elif kw == "additionalProperties":
            prefix.append(f"failed to validate additional property {inst_path.popleft()}: ")
        elif kw == "allOf":
            prefix.append(f"allOf {schema_path.popleft() + 1} failed: ")
        elif kw == "dependencies":
            prefix.append(f"failed to validate dependent schema for {quote(schema_path.popleft())}: ")
        elif kw in ("then", "else"):
            return "".join(prefix) + f"{kw} clause did not match"
        else:  # an applicator we do not phrase: keep the leaf message
            continue
    return "".join(prefix) + _leaf(error)
