"""A fast "is this valid?" for the JSON Schemas that tracking plans usually hold.

jsonschema walks a schema for every instance (~100-200 µs for a typical event schema); the pipeline checks
thousands of messages a second. ``fast_validator`` compiles a schema made only of common keywords (type, enum,
const, properties, required, additionalProperties, items, min/max*, pattern, format and annotations) into nested
Python closures with the same semantics as jsonschema's Draft 2020-12 validator. A schema with any other keyword
($ref, anyOf, prefixItems, patternProperties, ...) returns None, and the caller uses jsonschema alone.

The caller only trusts a "valid"; for an instance found invalid it asks jsonschema for the errors (and treats the
message as valid should jsonschema disagree), so a slip here can only cost time, never a wrong violation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator

Check = Callable[[Any], bool]

ANNOTATIONS = frozenset({"title", "description", "$comment", "examples", "default", "deprecated", "readOnly",
                         "writeOnly", "$schema", "$id", "contentMediaType", "contentEncoding"})
SUPPORTED = frozenset({"type", "enum", "const", "properties", "required", "additionalProperties", "items",
                       "minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength", "pattern",
                       "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "format"}) | ANNOTATIONS
DRAFT_2020_12 = ("https://json-schema.org/draft/2020-12/schema", "https://json-schema.org/draft/2020-12/schema#")
FORMAT_CHECKER = Draft202012Validator.FORMAT_CHECKER


class Unsupported(Exception):  # noqa: N818 - a signal to fall back, not an error
    pass


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


TYPE_CHECKS: dict[str, Check] = {
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}


def _scalar_equal(instance, member) -> bool:
    """jsonschema's equality for a scalar member: a boolean equals only a boolean; 1 equals 1.0."""
    if isinstance(instance, dict | list):
        return False
    if isinstance(instance, bool) or isinstance(member, bool):
        return type(instance) is type(member) and instance == member
    if isinstance(instance, str) or isinstance(member, str):
        return instance == member
    return instance == member


def _members(values) -> list:
    if not isinstance(values, list) or not all(v is None or isinstance(v, str | int | float | bool) for v in values):
        raise Unsupported
    return values


def _compile(schema, *, root: bool = False) -> Check:
    if schema is True:
        return lambda v: True
    if schema is False:
        return lambda v: False
    if not isinstance(schema, dict):
        raise Unsupported
    if set(schema) - SUPPORTED:
        raise Unsupported
    if "$schema" in schema and (not root or schema["$schema"] not in DRAFT_2020_12):
        raise Unsupported
    if "$id" in schema and not root:
        raise Unsupported
    checks: list[Check] = []

    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        funcs = [TYPE_CHECKS[kind] for kind in kinds]
        checks.append(funcs[0] if len(funcs) == 1 else (lambda v, fs=tuple(funcs): any(f(v) for f in fs)))
    if "enum" in schema:
        members = _members(schema["enum"])
        strings = frozenset(m for m in members if isinstance(m, str))
        others = [m for m in members if not isinstance(m, str)]
        checks.append(lambda v, s=strings, o=tuple(others):
                      (isinstance(v, str) and v in s) or (not isinstance(v, str) and any(_scalar_equal(v, m)
                                                                                           for m in o)))
    if "const" in schema:
        member = _members([schema["const"]])[0]
        checks.append(lambda v, m=member: _scalar_equal(v, m))

    for keyword, compare in (("minimum", lambda v, b: v >= b), ("maximum", lambda v, b: v <= b),
                             ("exclusiveMinimum", lambda v, b: v > b), ("exclusiveMaximum", lambda v, b: v < b)):
        if keyword in schema:
            bound = schema[keyword]
            checks.append(lambda v, b=bound, c=compare: not _is_number(v) or c(v, b))
    if "minLength" in schema:
        checks.append(lambda v, n=schema["minLength"]: not isinstance(v, str) or len(v) >= n)
    if "maxLength" in schema:
        checks.append(lambda v, n=schema["maxLength"]: not isinstance(v, str) or len(v) <= n)
    if "pattern" in schema:
        search = re.compile(schema["pattern"]).search
        checks.append(lambda v, s=search: not isinstance(v, str) or s(v) is not None)
    if "format" in schema:
        checks.append(lambda v, f=schema["format"]: FORMAT_CHECKER.conforms(v, f))

    if "minItems" in schema:
        checks.append(lambda v, n=schema["minItems"]: not isinstance(v, list) or len(v) >= n)
    if "maxItems" in schema:
        checks.append(lambda v, n=schema["maxItems"]: not isinstance(v, list) or len(v) <= n)
    if "items" in schema:
        item = _compile(schema["items"])
        checks.append(lambda v, c=item: not isinstance(v, list) or all(c(i) for i in v))

    if "minProperties" in schema:
        checks.append(lambda v, n=schema["minProperties"]: not isinstance(v, dict) or len(v) >= n)
    if "maxProperties" in schema:
        checks.append(lambda v, n=schema["maxProperties"]: not isinstance(v, dict) or len(v) <= n)
    if "required" in schema:
        required = tuple(schema["required"])
        checks.append(lambda v, r=required: not isinstance(v, dict) or all(k in v for k in r))
    properties = schema.get("properties") or {}
    if properties:
        compiled = tuple((name, _compile(sub)) for name, sub in properties.items())
        checks.append(lambda v, ps=compiled: not isinstance(v, dict)
                      or all(c(v[name]) for name, c in ps if name in v))
    if "additionalProperties" in schema:
        known = frozenset(properties)
        extra = schema["additionalProperties"]
        if extra is False:
            checks.append(lambda v, k=known: not isinstance(v, dict) or all(name in k for name in v))
        elif extra is not True:
            extra_check = _compile(extra)
            checks.append(lambda v, k=known, c=extra_check: not isinstance(v, dict)
                          or all(c(value) for name, value in v.items() if name not in k))

    if not checks:
        return lambda v: True
    if len(checks) == 1:
        return checks[0]
    checks_tuple = tuple(checks)
    return lambda v: all(c(v) for c in checks_tuple)


def fast_validator(schema) -> Check | None:
    """A function instance -> bool for ``schema``, or None when the schema uses a keyword this does not know."""
    try:
        return _compile(schema, root=True)
    except (Unsupported, KeyError, TypeError, re.error):
        return None
