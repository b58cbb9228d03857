"""Schemas and JSON from outside are refused before an engine compiles them: the schema bombs
the fault run found (unrolled counts, repetition, enums, $ref cycles), invalid and
unsatisfiable schemas, and nesting or integers the next hop cannot carry."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchyard.engine.schema_check import check_schema, load_bounded, repeat_cost
from switchyard.errors import InvalidArgument
from tests.schema_bombs import BOMBS

GOOD = [
    {"type": "object", "properties": {"phone": {"type": "string", "pattern": r"^\d{3}-\d{4}$"}}},
    {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 100},
    {  # a tree: recursion through optional fields has finite values
        "$defs": {
            "tree": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/tree"}}}}
        },
        "$ref": "#/$defs/tree",
    },
    {"anyOf": [{"$ref": "#"}, {"type": "null"}]},  # a branch without the cycle ends it
    {"type": "string", "enum": ["red", "green", "blue"]},
    {"type": "integer", "minimum": 1, "maximum": 1},
    True,
]


@pytest.mark.parametrize(("schema", "words"), list(BOMBS.values()), ids=list(BOMBS))
def test_a_schema_bomb_or_an_impossible_schema_is_refused(schema: Any, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        check_schema(schema, "response_format.json_schema")


@pytest.mark.parametrize("schema", GOOD)
def test_ordinary_schemas_pass(schema: Any) -> None:
    check_schema(schema, "schema")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"a": ' * 2000 + "1" + "}" * 2000, "deeper"),
        ("[" * 100_000 + "]" * 100_000, "larger|deeper"),
        ('{"maximum": 18446744073709551617}', "bits"),
        ('{"maximum": NaN}', "not valid JSON"),
        ("{", "not valid JSON"),
    ],
)
def test_json_from_outside_is_bounded(text: str, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        load_bounded(text, "schema_json", 64 * 1024)


def test_nesting_within_the_bound_passes() -> None:
    value: dict[str, Any] = {}
    for _ in range(30):
        value = {"a": value}
    assert load_bounded(json.dumps(value), "x", 1024) == value


@pytest.mark.parametrize(
    ("pattern", "cost"),
    [("abc", 3), ("a{3}", 3), (r"\d{3}-\d{4}", 8), ("(ab){3}", 6), ("(a{10}){10}", 100), ("[a-z]{2,5}", 5), ("a*", 1)],
)
def test_repeat_cost_multiplies_nested_counts(pattern: str, cost: int) -> None:
    assert repeat_cost(pattern) == cost
