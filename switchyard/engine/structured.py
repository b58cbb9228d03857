"""Structured outputs and tool calls, engine-neutral: what a request asks for, checked once,
and the constraint each engine then decodes under (vLLM's structured outputs, llama-server's
json_schema: both engines' own machinery, no grammar engine here).

- ``response_format`` json_object / json_schema: the output is decoded under that schema.
- ``tool_choice`` required / a named function: the output is decoded under a schema of the
  call(s) (a JSON array of {name, arguments}, or the named function's arguments object), so
  the calls are always well-formed; ``switchyard.engine.tool_calls`` turns it into calls.
- ``tool_choice`` auto: no constraint; the model's own tool-call format is parsed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from switchyard.engine.schema_check import check_schema, check_value, load_bounded
from switchyard.errors import InvalidArgument
from switchyard.v1 import inference_pb2 as pb

MAX_SCHEMA_BYTES = 64 * 1024
MAX_FUNCTIONS = 128
FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
ANY_OBJECT: dict[str, Any] = {"type": "object"}

ToolMode = Literal["none", "auto", "required", "named"]


@dataclass(frozen=True)
class Function:
    name: str
    description: str
    parameters: dict[str, Any]
    strict: bool

    def template_json(self) -> dict[str, Any]:
        """The OpenAI tool object chat templates expect."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass(frozen=True)
class ToolPlan:
    """What the answer may hold: calls of which functions, and how they are obtained."""

    mode: ToolMode
    functions: tuple[Function, ...] = ()
    named: str = ""  # the function a "named" choice forces
    parallel: bool = True

    @property
    def parses_calls(self) -> bool:
        return self.mode != "none" and bool(self.functions)


@dataclass(frozen=True)
class Constraint:
    """The JSON Schema the output is decoded under."""

    schema: dict[str, Any] = field(default_factory=lambda: dict(ANY_OBJECT))
    json_object: bool = False  # any object: engines have a cheaper form for it


def _schema(text: str, what: str) -> dict[str, Any]:
    if not text:
        return dict(ANY_OBJECT)
    value = load_bounded(text, what, MAX_SCHEMA_BYTES)
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what} must be a JSON Schema object")
    check_schema(value, what)
    return value


def functions_from_proto(chat: pb.ChatInput) -> tuple[Function, ...]:
    """The chat's functions, from the typed field or (deprecated) the Struct tools."""
    functions: list[Function] = []
    for i, tool in enumerate(chat.functions):
        if not FUNCTION_NAME.fullmatch(tool.name):
            raise InvalidArgument(f"chat.functions[{i}].name must be 1 to 64 of letters, digits, '_' and '-'")
        schema = _schema(tool.parameters_json, f"chat.functions[{i}].parameters_json")
        functions.append(Function(tool.name, tool.description, schema, tool.strict))
    for i, struct in enumerate(chat.tools):
        body = json.loads(json.dumps(dict(struct.items()), default=str)) if struct.fields else {}
        function = body.get("function", body) if isinstance(body, dict) else {}
        name = function.get("name", "") if isinstance(function, dict) else ""
        if not isinstance(name, str) or not FUNCTION_NAME.fullmatch(name):
            raise InvalidArgument(f"chat.tools[{i}] has no valid function name")
        parameters = function.get("parameters") or dict(ANY_OBJECT)
        check_value(parameters, f"chat.tools[{i}] parameters")
        check_schema(parameters, f"chat.tools[{i}] parameters")
        functions.append(Function(name, str(function.get("description", "")), parameters, False))
    if len(functions) > MAX_FUNCTIONS:
        raise InvalidArgument(f"at most {MAX_FUNCTIONS} functions, got {len(functions)}")
    names = [f.name for f in functions]
    if len(set(names)) != len(names):
        raise InvalidArgument("function names must be unique")
    return tuple(functions)


def tool_plan(chat: pb.ChatInput, functions: tuple[Function, ...]) -> ToolPlan:
    parallel = chat.parallel_tool_calls if chat.HasField("parallel_tool_calls") else True
    choice = chat.tool_choice.WhichOneof("choice")
    if choice == "function":
        name = chat.tool_choice.function
        if name not in {f.name for f in functions}:
            raise InvalidArgument(f"tool_choice names {name!r}, which is not among the functions")
        return ToolPlan("named", functions, name, parallel)
    mode = chat.tool_choice.mode if choice == "mode" else pb.TOOL_CHOICE_MODE_UNSPECIFIED
    if mode == pb.TOOL_CHOICE_MODE_NONE or not functions:
        if mode == pb.TOOL_CHOICE_MODE_REQUIRED:
            raise InvalidArgument("tool_choice required needs functions")
        return ToolPlan("none", functions, parallel=parallel)
    return ToolPlan("required" if mode == pb.TOOL_CHOICE_MODE_REQUIRED else "auto", functions, parallel=parallel)


def calls_schema(plan: ToolPlan) -> dict[str, Any]:
    """The schema a forced answer is decoded under: the named function's arguments, or an
    array of calls ({name, arguments}) of the functions."""
    if plan.mode == "named":
        return next(f.parameters for f in plan.functions if f.name == plan.named)
    defs = {f"fn_{f.name}": _rebased(f.parameters, f"#/$defs/fn_{f.name}") for f in plan.functions}
    calls = [
        {
            "type": "object",
            "properties": {"name": {"const": f.name}, "arguments": {"$ref": f"#/$defs/fn_{f.name}"}},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for f in plan.functions
    ]
    array: dict[str, Any] = {"type": "array", "items": {"anyOf": calls}, "minItems": 1, "$defs": defs}
    if not plan.parallel:
        array["maxItems"] = 1
    return array


def _rebased(schema: Any, base: str) -> Any:
    """A function's parameters moved under ``base`` of the calls' schema: its local ``$ref``s
    (to its own ``$defs``, or to itself) are rewritten to point there, so tools whose
    parameters use ``$defs`` work with tool_choice required as they do with a named one."""
    if isinstance(schema, list):
        return [_rebased(item, base) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _rebased(value, base) for key, value in schema.items() if key not in ("enum", "const")}
    out.update({key: schema[key] for key in ("enum", "const") if key in schema})  # values, not schemas
    ref = schema.get("$ref")
    if isinstance(ref, str) and (ref == "#" or ref.startswith("#/")):
        out["$ref"] = base + ref[1:]
    return out


def constraint_from_proto(request: pb.GenerateRequest, plan: ToolPlan | None) -> Constraint | None:
    """The constraint of a request: its response_format, or a forced tool choice."""
    kind = request.response_format.WhichOneof("kind")
    forced = plan is not None and plan.mode in ("required", "named")
    if kind is not None and forced:
        raise InvalidArgument("response_format cannot be combined with a tool_choice that forces a call")
    if forced:
        assert plan is not None
        return Constraint(schema=calls_schema(plan))
    if kind == "json_object" and request.response_format.json_object:
        return Constraint(json_object=True)
    if kind == "json_schema":
        text = request.response_format.json_schema.schema_json
        if not text:
            raise InvalidArgument("response_format.json_schema.schema_json is empty")
        return Constraint(schema=_schema(text, "response_format.json_schema.schema_json"))
    return None
