"""The quick schema check must agree with jsonschema (it only spares jsonschema's work)."""

import copy

import jsonschema
import pytest

from gateway.core import schemas
from gateway.core.schemas.fastcheck import compile_schema

FORMATS = jsonschema.Draft7Validator.FORMAT_CHECKER

ROUTE = {"id": "1", "uri": "/hello", "methods": ["GET"],
         "upstream": {"nodes": {"127.0.0.1:1980": 1}, "type": "roundrobin"}}


def test_every_core_schema_compiles():
    validators = [*schemas._validators.values(), *schemas._secret_validators.values()]
    assert all(schemas.quick_check(v) is not None for v in validators)


def _variants(obj):
    yield obj
    for key in list(obj):
        for bad in (None, True, 0, 1.5, "", "x" * 300, [], {}, ["GET", "GET"], -1):
            changed = copy.deepcopy(obj)
            changed[key] = bad
            yield changed
        dropped = copy.deepcopy(obj)
        del dropped[key]
        yield dropped
    yield dict(obj, unknown_field=1)
    yield dict(obj, host="a.com", hosts=["b.com"])
    yield dict(obj, upstream={"nodes": [{"host": "::1", "port": 80, "weight": 1}],
                              "type": "chash", "key": "remote_addr"})


@pytest.mark.parametrize("kind", sorted(schemas.SCHEMAS))
def test_quick_check_agrees_with_jsonschema(kind):
    validator = schemas._validators[kind]
    quick = schemas.quick_check(validator)
    for obj in _variants(ROUTE):
        assert quick(obj) == validator.is_valid(obj), (kind, obj)


@pytest.mark.parametrize("schema,good,bad", [
    ({"type": "integer"}, [1, 2.0], [True, 1.5, "1"]),
    ({"enum": [1, "a"]}, [1, 1.0, "a"], [True, "b"]),
    ({"type": "string", "format": "ipv4"}, ["1.2.3.4"], ["1.2.3", "::1"]),
    ({"uniqueItems": True}, [[1, 2], "x"], [[1, 1], [{"a": 1}, {"a": 1}]]),
    ({"oneOf": [{"type": "integer"}, {"minimum": 0}]}, [-1, "x"], [1]),
    ({"properties": {"a": {"type": "string"}}, "additionalProperties": False,
      "patternProperties": {"^x-": {"type": "integer"}}},
     [{"a": "s"}, {"x-1": 1}], [{"b": 1}, {"x-1": "s"}, {"a": 1}]),
    ({"if": {"required": ["a"]}, "then": {"required": ["b"]}, "else": {"required": ["c"]}},
     [{"a": 1, "b": 1}, {"c": 1}], [{"a": 1}, {}]),
    ({"dependencies": {"a": ["b"], "c": {"required": ["d"]}}},
     [{"a": 1, "b": 1}, {"c": 1, "d": 1}, {}], [{"a": 1}, {"c": 1}]),
])
def test_keywords(schema, good, bad):
    quick = compile_schema(schema, FORMATS)
    validator = jsonschema.Draft7Validator(schema, format_checker=FORMATS)
    for value in good:
        assert quick(value) and validator.is_valid(value), value
    for value in bad:
        assert not quick(value) and not validator.is_valid(value), value


def test_formats_are_jsonschemas_and_defaults_are_not_filled():
    quick = compile_schema({"type": "string", "format": "ipv4"}, FORMATS)
    assert quick("1.2.3.4") and not quick("1.2.3.400")
    obj = {}
    assert compile_schema({"properties": {"a": {"default": 1}}}, FORMATS)(obj) and obj == {}


def test_unknown_keywords_are_ignored_as_jsonschema_does():
    assert compile_schema({"type": "object", "encrypt_fields": ["key"]}, FORMATS)({})
    assert compile_schema({"definitions": {"x": {"type": "string"}},
                           "$ref": "#/definitions/x"}, FORMATS)("s")


def test_a_process_that_does_without_compiles_nothing_and_its_children_do():
    """The master: plugin and core schemas alike fall back to jsonschema alone, and it
    caches nothing its forked workers would inherit: they compile the checks again."""
    import os

    from gateway.core import schemas
    from gateway.core.schemas import fastcheck
    assert compile_schema({"type": "string"}, None) is not None
    route_validator = schemas._validators["routes"]
    fastcheck.disable()
    try:
        assert compile_schema({"type": "string"}, None) is None
        assert schemas.quick_check(route_validator) is None
        assert schemas.validate("routes", {"uri": "/a", "upstream_id": "1"}) is None
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:        # a worker: quick checks again, the route schema's included
            ok = schemas.quick_check(route_validator) is not None \
                and compile_schema({"type": "string"}, None) is not None
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
        os.waitpid(pid, 0)
        assert os.read(read, 1) == b"1"
        os.close(read)
        os.close(write)
    finally:
        fastcheck._disabled_in[0] = 0
