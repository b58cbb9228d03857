"""Tool calls out of model text: each supported format, whole and split across deltas."""

from __future__ import annotations

import json

import pytest

from switchyard.engine.structured import Function, ToolPlan
from switchyard.engine.tool_calls import CallShaper, parser_for
from switchyard.v1 import inference_pb2 as pb

WEATHER = Function("get_weather", "", {"type": "object"}, False)
TIME = Function("get_time", "", {"type": "object"}, False)


def run(plan: ToolPlan, parser: str, pieces: list[str]) -> tuple[str, list[tuple[str, dict[str, object]]], int]:
    """Content, calls and finish reason after feeding ``pieces`` as deltas."""
    shaper = CallShaper(plan, parser)
    out: list[pb.GenerateResponse] = []
    for piece in pieces:
        out.extend(shaper.feed(pb.GenerateResponse(delta=pb.Delta(text=piece))))
    out.extend(shaper.feed(pb.GenerateResponse(finished=pb.Finished(reason=pb.FINISH_REASON_STOP))))
    content = "".join(r.delta.text for r in out if r.HasField("delta"))
    calls: dict[int, list[str]] = {}
    for response in out:
        for call in response.delta.tool_calls:
            entry = calls.setdefault(call.index, [call.name, ""])
            entry[1] += call.arguments
    parsed = [(name, json.loads(arguments)) for name, arguments in (calls[i] for i in sorted(calls))]
    return content, parsed, out[-1].finished.reason


AUTO = ToolPlan("auto", (WEATHER, TIME))
HERMES = 'Let me look. <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call> Done.'


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 1000])
def test_hermes_calls_split_anywhere(size: int) -> None:
    pieces = [HERMES[i : i + size] for i in range(0, len(HERMES), size)]
    content, calls, reason = run(AUTO, "hermes", pieces)
    assert content == "Let me look.  Done."
    assert calls == [("get_weather", {"city": "Paris"})] and reason == pb.FINISH_REASON_TOOL_CALLS


def test_hermes_several_calls_and_an_unclosed_last_one() -> None:
    text = (
        '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>'
        '<tool_call>{"name": "get_weather", "arguments": {"city": "東京"}}'
    )
    _, calls, _ = run(AUTO, "hermes", list(text))
    assert calls == [("get_time", {}), ("get_weather", {"city": "東京"})]


@pytest.mark.parametrize(
    "text",
    [
        'a <tool_call>{"name": "unknown", "arguments": {}}</tool_call>',  # not one of the functions
        "a <tool_call>not json</tool_call>",
        "a <tool_cal",  # a tag that never completed
        "plain <tool text",
    ],
)
def test_what_is_not_a_call_stays_content(text: str) -> None:
    content, calls, reason = run(AUTO, "hermes", list(text))
    assert content == text and calls == [] and reason == pb.FINISH_REASON_STOP


def test_llama3_json_calls() -> None:
    text = (
        '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo"}}; {"name": "get_time", "parameters": {}}'
    )
    content, calls, reason = run(AUTO, "llama3_json", [text[:7], text[7:20], text[20:]])
    assert content == "" and calls == [("get_weather", {"city": "Oslo"}), ("get_time", {})]
    assert reason == pb.FINISH_REASON_TOOL_CALLS
    assert run(AUTO, "llama3_json", ["Just text."])[:2] == ("Just text.", [])
    assert run(AUTO, "llama3_json", ['{"not": "a call"}'])[:2] == ('{"not": "a call"}', [])


def test_forced_calls() -> None:
    named = ToolPlan("named", (WEATHER,), "get_weather")
    _, calls, reason = run(named, "hermes", ['{"ci', 'ty": "Rome"}'])
    assert calls == [("get_weather", {"city": "Rome"})] and reason == pb.FINISH_REASON_TOOL_CALLS
    required = ToolPlan("required", (WEATHER, TIME))
    array = '[{"name": "get_time", "arguments": {}}, {"name": "get_weather", "arguments": {"city": "Lima"}}]'
    _, calls, _ = run(required, "hermes", [array[:10], array[10:]])
    assert calls == [("get_time", {}), ("get_weather", {"city": "Lima"})]


def test_tool_choice_none_leaves_the_text_alone() -> None:
    assert run(ToolPlan("none", (WEATHER,)), "hermes", [HERMES]) == (HERMES, [], pb.FINISH_REASON_STOP)


def test_the_parser_follows_the_template() -> None:
    assert parser_for("... <tool_call> ...") == "hermes"
    assert parser_for("{{- '<|python_tag|>' }}") == "llama3_json"
