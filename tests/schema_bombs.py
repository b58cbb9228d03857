"""Schemas that made an engine spend without bound or answer a fragment (the fault run of
issue 19), and schemas no value can satisfy: each with words of the message refusing it."""

from __future__ import annotations

from typing import Any

NODE = {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}, "required": ["next"]}
BOMBS: dict[str, tuple[Any, str]] = {
    "min-items": ({"type": "array", "items": {"type": "integer"}, "minItems": 1_000_000_000}, "minItems"),
    "max-items": ({"type": "array", "items": {"type": "integer"}, "maxItems": 1_000_000_000}, "maxItems"),
    "max-length": ({"type": "string", "maxLength": 1_000_000_000}, "maxLength"),
    "repeat": ({"type": "string", "pattern": "^a{1000000}$"}, "repetitions"),
    "nested-repeat": ({"type": "string", "pattern": "(a{1000}){1000}"}, "repetitions"),
    "long-pattern": ({"type": "string", "pattern": "a" * 2000}, "longer than"),
    "required-cycle": ({"$defs": {"node": NODE}, "$ref": "#/$defs/node"}, "contain itself"),
    "root-cycle": ({"$ref": "#"}, "contain itself"),
    "all-of-cycle": ({"$defs": {"a": {"allOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"}, "contain itself"),
    "big-enum": ({"enum": [{"k": i} for i in range(3000)]}, "too large"),
    "remote-ref": ({"$ref": "https://example.com/schema.json"}, "only local"),
    "dangling-ref": ({"$ref": "#/$defs/missing"}, "points at nothing"),
    "bad-pattern": ({"type": "string", "pattern": "("}, "not a valid JSON Schema"),
    "min-above-max": ({"type": "integer", "minimum": 5, "maximum": 1}, "admit no value"),
    "empty-exclusive": ({"type": "number", "exclusiveMinimum": 1, "maximum": 1}, "admit no value"),
    "lengths": ({"type": "string", "minLength": 5, "maxLength": 2}, "admit no value"),
    "required-not-a-list": ({"type": "object", "required": "x"}, "not a valid JSON Schema"),
    "required-not-allowed": (
        {"type": "object", "properties": {"a": {}}, "required": ["b"], "additionalProperties": False},
        "not an allowed property",
    ),
    "type-typo": ({"type": "strin"}, "not a valid JSON Schema"),
}
