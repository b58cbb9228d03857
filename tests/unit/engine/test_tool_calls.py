"""Forced tool calls out of constrained output, whole and split across deltas; a forced answer
cut short is no call and no content. (Calls in a model's own format are the engines' parsers'
job: tests/unit/engine_llamacpp/test_chat.py and tests/unit/engine_vllm/test_parsing.py.)"""

from __future__ import annotations

import json

import pytest

from switchyard.engine.structured import Function, ToolPlan
from switchyard.engine.tool_calls import CallShaper, forced
from switchyard.v1 import inference_pb2 as pb

WEATHER = Function("get_weather", "", {"type": "object"}, False)
TIME = Function("get_time", "", {"type": "object"}, False)
ARRAY = '[{"name": "get_time", "arguments": {}}, {"name": "get_weather", "arguments": {"city": "Lima"}}]'


def run(
    plan: ToolPlan, pieces: list[str], reason: pb.FinishReason.ValueType = pb.FINISH_REASON_STOP
) -> tuple[str, list[tuple[str, str]], int]:
    """Content, calls (name, arguments text) and finish reason after feeding ``pieces``."""
    shaper = CallShaper(plan)
    out: list[pb.GenerateResponse] = []
    for piece in pieces:
        out.extend(shaper.feed(pb.GenerateResponse(delta=pb.Delta(text=piece))))
    out.extend(shaper.feed(pb.GenerateResponse(finished=pb.Finished(reason=reason))))
    content = "".join(r.delta.text for r in out if r.HasField("delta"))
    calls: dict[int, list[str]] = {}
    for response in out:
        for call in response.delta.tool_calls:
            entry = calls.setdefault(call.index, [call.name, ""])
            entry[1] += call.arguments
    return (
        content,
        [(name, arguments) for name, arguments in (calls[i] for i in sorted(calls))],
        out[-1].finished.reason,
    )


def test_a_named_call_streams_its_arguments() -> None:
    named = ToolPlan("named", (WEATHER,), "get_weather")
    content, calls, reason = run(named, ['{"ci', 'ty": "Rome"}'])
    assert content == "" and calls == [("get_weather", '{"city": "Rome"}')] and reason == pb.FINISH_REASON_TOOL_CALLS


def test_required_calls_come_whole_at_the_end_however_split() -> None:
    required = ToolPlan("required", (WEATHER, TIME))
    for size in (1, 3, 10, 1000):
        content, calls, reason = run(required, [ARRAY[i : i + size] for i in range(0, len(ARRAY), size)])
        assert content == "" and reason == pb.FINISH_REASON_TOOL_CALLS
        assert [(name, json.loads(arguments)) for name, arguments in calls] == [
            ("get_time", {}),
            ("get_weather", {"city": "Lima"}),
        ]


def test_a_required_answer_cut_short_is_no_call_and_no_content() -> None:
    """max_tokens ends the array part way: no partial call, none of our array as content."""
    required = ToolPlan("required", (WEATHER, TIME))
    assert run(required, [ARRAY[:30]], pb.FINISH_REASON_LENGTH) == ("", [], pb.FINISH_REASON_LENGTH)


def test_only_forced_choices_are_shaped_here() -> None:
    assert forced(ToolPlan("required", (WEATHER,))) and forced(ToolPlan("named", (WEATHER,), "get_weather"))
    assert not forced(ToolPlan("auto", (WEATHER,))) and not forced(ToolPlan("none", (WEATHER,)))
    assert not forced(None)


def test_the_required_schema_keeps_each_functions_defs() -> None:
    """Parameters with $defs/$ref compile under required (they did only with a named choice)."""
    import jsonschema

    from switchyard.engine.structured import calls_schema

    parameters = {
        "type": "object",
        "properties": {"opt": {"$ref": "#/$defs/Opt"}, "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}},
        "required": ["opt"],
        "$defs": {"Opt": {"type": "string", "enum": ["a", "b"]}},
    }
    plan = ToolPlan("required", (Function("pick", "", parameters, False), TIME))
    schema = calls_schema(plan)
    good = [{"name": "pick", "arguments": {"opt": "a", "next": {"opt": "b", "next": None}}}]
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{"name": "pick", "arguments": {"opt": "c"}}], schema)
