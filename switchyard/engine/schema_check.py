"""JSON and JSON Schemas from outside, checked before an engine compiles anything.

Both engines turn a schema into a grammar, and both can be made to spend without bound on it:
llguidance (vLLM) unrolls ``minItems``/``maxItems`` (one schema with ``minItems: 1e9`` grew
the vLLM engine by gigabytes, answering nothing), llama-server expands regex repetitions, and
neither refuses every schema that cannot be satisfied (a pattern ``(``, ``minimum`` above
``maximum``, ``"required": "x"``, a ``$ref`` cycle through required fields). A schema passes
here when it is a valid JSON Schema (the 2020-12 meta-schema, patterns that compile), every
count in it is bounded, and nothing in it is plainly unsatisfiable; otherwise the request gets
INVALID_ARGUMENT naming the place, before any token. The vLLM engine then compiles it with the
model's own tokenizer under llguidance's limits (services/engine_vllm/grammar.py).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any, TypeGuard

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from switchyard.errors import InvalidArgument

MAX_DEPTH = 32  # JSON nesting of a schema or of tool-call arguments
MAX_INT = 2**63  # what protobuf, orjson and the engines' JSON readers all carry
MAX_COUNT = 1024  # minItems, maxItems, minProperties, maxProperties, contains counts
MAX_LENGTH = 16_384  # minLength, maxLength
MAX_PATTERN_CHARS = 1024
MAX_REPEATS = 4096  # characters a pattern's repetitions spell out, nested counts multiplied
MAX_NODES = 10_000  # subschemas in one schema
MAX_ENUM_VALUES = 1000  # enum and const values in one schema, as OpenAI's structured outputs
MAX_PROPERTIES = 5000  # named properties in one schema, as OpenAI's structured outputs
COUNTS = ("minItems", "maxItems", "minProperties", "maxProperties", "minContains", "maxContains")
RANGES = (
    ("minimum", "maximum"),
    ("exclusiveMinimum", "maximum"),
    ("minimum", "exclusiveMaximum"),
    ("minLength", "maxLength"),
    ("minItems", "maxItems"),
    ("minProperties", "maxProperties"),
    ("minContains", "maxContains"),
)
_FORMATS = FormatChecker(formats=("regex",))


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def load_bounded(text: str, what: str, max_bytes: int) -> Any:
    """Parse JSON text from outside: at most ``max_bytes``, nesting at most MAX_DEPTH, integers
    that fit 63 bits, no NaN or Infinity; InvalidArgument naming ``what`` otherwise."""
    if len(text) > max_bytes or len(text.encode()) > max_bytes:
        raise InvalidArgument(f"{what} is larger than {max_bytes} bytes")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidArgument(f"{what} nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise InvalidArgument(f"{what} is not valid JSON: {exc}") from None
    check_value(value, what)
    return value


def check_value(value: Any, what: str) -> None:
    """Depth and integer bounds of a parsed JSON value (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidArgument(f"{what} nests deeper than {MAX_DEPTH} levels")
        if isinstance(item, bool):
            continue
        if isinstance(item, int) and abs(item) >= MAX_INT:
            raise InvalidArgument(f"{what} holds an integer of {item.bit_length()} bits (at most 63)")
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidArgument(f"{what} holds a number that is not finite")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _subschemas(schema: Any, path: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Every schema object inside ``schema`` (itself included), with its JSON pointer."""
    stack = [(schema, path)]
    while stack:
        node, where = stack.pop()
        if not isinstance(node, dict):
            continue
        yield node, where
        for key, child in node.items():
            if key in ("enum", "const", "default", "examples"):
                continue  # values, not schemas
            if isinstance(child, dict):
                stack.append((child, f"{where}/{key}"))
            elif isinstance(child, list):
                stack.extend((c, f"{where}/{key}/{i}") for i, c in enumerate(child))


def repeat_cost(pattern: str) -> int:
    """About how many characters a pattern's counted repetitions spell out: a count multiplies
    what it repeats, so ``(a{1000}){1000}`` costs a million. Unbounded ``*``/``+`` cost
    nothing here (a grammar loops on them)."""
    total, _ = _sequence_cost(pattern, 0)
    return total


def _sequence_cost(pattern: str, i: int) -> tuple[int, int]:
    total, last = 0, 0
    while i < len(pattern):
        char = pattern[i]
        if char == ")":
            return total, i + 1
        if char in "|*+?^$":  # alternation counted as a sequence: an over-estimate
            last = 0 if char == "|" else last
            i += 1
            continue
        if char == "(":
            last, i = _sequence_cost(pattern, i + 1)
            last = max(last, 1)
        elif char == "[":
            end = i + 1
            while end < len(pattern) and pattern[end] != "]":
                end += 2 if pattern[end] == "\\" else 1
            last, i = 1, end + 1
        elif char == "\\":
            last, i = 1, i + 2
        elif char == "{" and (count := re.match(r"\{(\d+)(?:,(\d*))?\}", pattern[i:])):
            times = max(int(count.group(1)), int(count.group(2) or 0))
            total += last * (times - 1) if times else -last
            last, i = 0, i + count.end()
            continue
        else:
            last, i = 1, i + 1
        total += last
    return total, i


def check_schema(schema: Any, what: str) -> None:
    """Refuse a schema that is invalid, unbounded or plainly unsatisfiable (see the module)."""
    if not isinstance(schema, (dict, bool)):
        raise InvalidArgument(f"{what} must be a JSON Schema object")
    try:
        Draft202012Validator.check_schema(schema, format_checker=_FORMATS)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise InvalidArgument(f"{what} is not a valid JSON Schema at '/{where}': {exc.message[:200]}") from None
    except RecursionError:
        raise InvalidArgument(f"{what} nests deeper than {MAX_DEPTH} levels") from None
    enums = properties = 0
    for nodes, (node, where) in enumerate(_subschemas(schema, ""), start=1):
        enums += len(node["enum"]) if isinstance(node.get("enum"), list) else 0
        enums += "const" in node
        properties += len(node["properties"]) if isinstance(node.get("properties"), dict) else 0
        if nodes > MAX_NODES or enums > MAX_ENUM_VALUES or properties > MAX_PROPERTIES:
            raise InvalidArgument(
                f"{what} is too large: at most {MAX_NODES} subschemas, {MAX_ENUM_VALUES} enum values and "
                f"{MAX_PROPERTIES} properties"
            )
        _check_node(node, f"{what} at '{where or '/'}'")
    _check_refs(schema, what)


def _check_node(node: dict[str, Any], where: str) -> None:
    for key in COUNTS:
        if isinstance(node.get(key), int) and node[key] > MAX_COUNT:
            raise InvalidArgument(f"{where}: {key} {node[key]} is more than {MAX_COUNT}")
    for key in ("minLength", "maxLength"):
        if isinstance(node.get(key), int) and node[key] > MAX_LENGTH:
            raise InvalidArgument(f"{where}: {key} {node[key]} is more than {MAX_LENGTH}")
    for low, high in RANGES:
        a, b = node.get(low), node.get(high)
        if _number(a) and _number(b) and (a > b or (a == b and "exclusive" in low + high)):
            raise InvalidArgument(f"{where}: {low} {a} and {high} {b} admit no value")
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        if len(pattern) > MAX_PATTERN_CHARS:
            raise InvalidArgument(f"{where}: the pattern is longer than {MAX_PATTERN_CHARS} characters")
        if repeat_cost(pattern) > MAX_REPEATS:
            raise InvalidArgument(f"{where}: the pattern's repetitions spell out more than {MAX_REPEATS} characters")
    required, props = node.get("required"), node.get("properties")
    if isinstance(required, list) and node.get("additionalProperties") is False and isinstance(props, dict):
        missing = [name for name in required if name not in props]
        if missing:
            raise InvalidArgument(f"{where}: required {missing[0]!r} is not an allowed property")


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_refs(schema: Any, what: str) -> None:
    """Every ``$ref`` points inside the schema, and no value is required to contain itself
    (a cycle through required properties, ``minItems`` items or ``allOf``: no finite value)."""
    if not isinstance(schema, dict):
        return
    targets: dict[str, Any] = {}
    for node, where in _subschemas(schema, ""):
        ref = node.get("$ref")
        if ref is None:
            continue
        if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
            raise InvalidArgument(f"{what} at '{where}': only local $ref ('#/...') is allowed, got {str(ref)[:80]!r}")
        targets[ref] = _resolve(schema, ref, what, where)
    for ref in targets:
        if _requires(targets[ref], ref, targets, set()):
            raise InvalidArgument(f"{what}: {ref} must contain itself through required fields; no value is finite")


def _resolve(schema: dict[str, Any], ref: str, what: str, where: str) -> Any:
    node: Any = schema
    for raw in ref[2:].split("/") if ref != "#" else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise InvalidArgument(f"{what} at '{where}': $ref {ref[:80]!r} points at nothing in the schema")
    return node


def _requires(node: Any, ref: str, targets: dict[str, Any], seen: set[int]) -> bool:
    """Whether every value of ``node`` must contain a value of ``ref``."""
    if not isinstance(node, dict) or id(node) in seen:
        return False
    seen = seen | {id(node)}
    if node.get("$ref") == ref:
        return True
    if isinstance(node.get("$ref"), str) and _requires(targets.get(node["$ref"]), ref, targets, seen):
        return True
    if any(_requires(part, ref, targets, seen) for part in node.get("allOf", []) if isinstance(part, dict)):
        return True
    for key in ("anyOf", "oneOf"):
        branches = [b for b in node.get(key, []) if isinstance(b, dict)]
        if branches and all(_requires(b, ref, targets, seen) for b in branches):
            return True
    props: dict[str, Any] = node["properties"] if isinstance(node.get("properties"), dict) else {}
    for name in node.get("required", []) if isinstance(node.get("required"), list) else []:
        if name in props and _requires(props[name], ref, targets, seen):
            return True
    min_items = node.get("minItems", 0)
    return isinstance(min_items, int) and min_items > 0 and _requires(node.get("items"), ref, targets, seen)
