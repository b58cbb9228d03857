"""Reasoning models and tool-call formats through each engine's own parsers, on the demo
model's format variants: their weights answer a chat by construction in the variant's format
(think, answer, call get_weather; switchyard/demo_model.py's script), so the parsers read real
engine output. Both engines, streamed and whole, through the openai SDK and LangChain."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from switchyard.demo_formats import ANSWER, THOUGHT
from tests.e2e.conftest import E2E_ENGINES, Stack
from tests.formats.conftest import served
from tests.helpers import openai_client

ENGINES = [e.name for e in E2E_ENGINES]
ASK: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city now",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CALL = ("get_weather", {"city": "Paris"})


def client(stack: Stack) -> openai.OpenAI:
    return openai_client(f"{stack.url}/v1", 600)


def ask(stack: Stack, variant: str, engine: str, extra: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    body: Any = {"model": served(variant), "messages": ASK, "max_tokens": 40, "temperature": 0, **kwargs}
    return client(stack).chat.completions.create(**body, extra_body={"engine": engine, **(extra or {})})


def streamed(stack: Stack, variant: str, engine: str, **kwargs: Any) -> dict[str, Any]:
    """The streamed answer put together: reasoning, content, calls, finish reason, usage."""
    chunks = list(ask(stack, variant, engine, stream=True, stream_options={"include_usage": True}, **kwargs))
    reasoning = content = ""
    calls: dict[int, list[str]] = {}
    finish = None
    for chunk in chunks[:-1]:
        choice = chunk.choices[0]
        extra = choice.delta.model_extra or {}
        reasoning += extra.get("reasoning_content") or ""
        content += choice.delta.content or ""
        for piece in choice.delta.tool_calls or []:
            entry = calls.setdefault(piece.index, ["", ""])
            entry[0] += (piece.function.name or "") if piece.function else ""
            entry[1] += (piece.function.arguments or "") if piece.function else ""
        finish = choice.finish_reason or finish
    return {
        "reasoning": reasoning,
        "content": content,
        "calls": [(name, json.loads(arguments)) for name, arguments in (calls[i] for i in sorted(calls))],
        "finish": finish,
        "usage": chunks[-1].usage,
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_a_qwen3_style_model_thinks_answers_and_calls_apart(formats_stack: Stack, engine: str) -> None:
    whole = ask(formats_stack, "qwen3", engine, tools=[WEATHER])
    message = whole.choices[0].message
    assert (message.model_extra or {})["reasoning_content"] == THOUGHT
    assert (message.model_extra or {})["reasoning"] == THOUGHT  # vLLM's name for it too
    assert message.content == ANSWER
    assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []] == [CALL]
    assert whole.choices[0].finish_reason == "tool_calls"
    assert whole.usage is not None and whole.usage.completion_tokens_details is not None
    assert whole.usage.completion_tokens_details.reasoning_tokens >= 1
    stream = streamed(formats_stack, "qwen3", engine, tools=[WEATHER])
    assert (stream["reasoning"], stream["content"], stream["calls"]) == (THOUGHT, ANSWER, [CALL])
    assert stream["finish"] == "tool_calls" and stream["usage"].completion_tokens == whole.usage.completion_tokens


@pytest.mark.parametrize("engine", ENGINES)
def test_without_tools_a_call_is_text_and_reasoning_can_be_left_out(formats_stack: Stack, engine: str) -> None:
    plain = ask(formats_stack, "qwen3", engine)
    assert (
        plain.choices[0].message.content
        == ANSWER + "<tool_call>" + json.dumps({"name": CALL[0], "arguments": CALL[1]}) + "</tool_call>"
    )
    hidden = ask(formats_stack, "qwen3", engine, tools=[WEATHER], extra={"include_reasoning": False})
    assert "reasoning_content" not in (hidden.choices[0].message.model_extra or {})
    assert hidden.usage is not None and hidden.usage.completion_tokens_details is not None
    assert hidden.usage.completion_tokens_details.reasoning_tokens >= 1  # generated and counted all the same


@pytest.mark.parametrize("engine", ENGINES)
def test_reasoning_effort_reaches_the_template(formats_stack: Stack, engine: str) -> None:
    """none switches Qwen3's thinking off in its template (an empty think block in the prompt)."""
    default = ask(formats_stack, "qwen3", engine, max_tokens=1)
    off = ask(formats_stack, "qwen3", engine, max_tokens=1, reasoning_effort="none")
    assert default.usage is not None and off.usage is not None
    assert off.usage.prompt_tokens > default.usage.prompt_tokens


@pytest.mark.parametrize("engine", ENGINES)
def test_a_mistral_style_model_calls_in_its_format(formats_stack: Stack, engine: str) -> None:
    whole = ask(formats_stack, "mistral", engine, tools=[WEATHER])
    message = whole.choices[0].message
    assert message.content == ANSWER
    assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []] == [CALL]
    stream = streamed(formats_stack, "mistral", engine, tools=[WEATHER])
    assert (stream["content"], stream["calls"], stream["finish"]) == (ANSWER, [CALL], "tool_calls")


def test_the_same_weights_give_the_same_calls_on_both_engines(formats_stack: Stack) -> None:
    if len(ENGINES) < 2:
        pytest.skip("needs both engines")
    for variant in ("qwen3", "mistral"):
        answers = [ask(formats_stack, variant, engine, tools=[WEATHER]).choices[0].message for engine in ENGINES]
        calls = [[(c.function.name, c.function.arguments) for c in m.tool_calls or []] for m in answers]
        assert calls[0] == calls[1] and calls[0], (variant, calls)
        assert answers[0].content == answers[1].content


@pytest.mark.parametrize("engine", ENGINES)
def test_a_langchain_agent_loop_completes_two_tool_rounds(formats_stack: Stack, engine: str) -> None:
    """bind_tools, the calls run, their results sent back as tool messages (and the assistant's
    reasoning with them), twice; then the model answers with the tools off."""

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city now."""
        return f"It is sunny in {city}."

    llm = ChatOpenAI(
        base_url=f"{formats_stack.url}/v1",
        api_key="unused",
        model=served("qwen3"),
        max_tokens=40,
        temperature=0,
        extra_body={"engine": engine},
    )
    agent = llm.bind_tools([get_weather])
    messages: list[Any] = [HumanMessage("What is the weather in Paris?")]
    for _ in range(2):
        reply = agent.invoke(messages)
        assert [call["name"] for call in reply.tool_calls] == ["get_weather"]
        messages.append(reply)
        for call in reply.tool_calls:
            messages.append(ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"]))
    final = llm.bind_tools([get_weather], tool_choice="none").invoke(messages)
    assert not final.tool_calls and final.content


@pytest.mark.parametrize("engine", ENGINES)
def test_reasoning_sent_back_goes_through_the_template(formats_stack: Stack, engine: str) -> None:
    """An assistant turn's reasoning_content is the template's to use: the Qwen3-style template
    renders it for the turn after the last user message, so the prompt grows by it."""
    call: Any = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    turn: Any = {"role": "assistant", "content": ANSWER, "tool_calls": [call]}
    result: Any = {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
    without = ask(formats_stack, "qwen3", engine, messages=[*ASK, turn, result], tools=[WEATHER], max_tokens=1)
    thought = {**turn, "reasoning_content": THOUGHT + " " + THOUGHT}
    with_it = ask(formats_stack, "qwen3", engine, messages=[*ASK, thought, result], tools=[WEATHER], max_tokens=1)
    assert without.usage is not None and with_it.usage is not None
    assert with_it.usage.prompt_tokens > without.usage.prompt_tokens


@pytest.mark.parametrize("engine", ENGINES)
def test_a_gpt_oss_style_model_calls_through_each_engines_harmony_path(formats_stack: Stack, engine: str) -> None:
    """Over gpt-oss's own vocabulary: llama-server's gpt-oss parser; vLLM's harmony path (its
    renderer for the prompt, openai_harmony's parser for the output). Both read the scripted
    call in the commentary channel."""
    whole = ask(formats_stack, "harmony-o200k", engine, tools=[WEATHER])
    message = whole.choices[0].message
    assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []] == [CALL]
    assert not message.content and whole.choices[0].finish_reason == "tool_calls"
    stream = streamed(formats_stack, "harmony-o200k", engine, tools=[WEATHER])
    assert (stream["calls"], stream["finish"]) == ([CALL], "tool_calls")


def test_a_harmony_model_calls_through_llama_servers_gpt_oss_parser(formats_stack: Stack) -> None:
    """gpt-oss's harmony format over a small vocabulary, on llama.cpp: llama-server's own gpt-oss
    parser reads the call a bias steers the model into (' to' starts a recipient, <|message|> its
    arguments). vLLM's harmony path reads gpt-oss's own vocabulary only (the test above)."""
    bias = {"352": 100, "7": 80}
    paris: Any = json.loads(json.dumps(WEATHER))
    paris["function"]["parameters"]["properties"]["city"]["enum"] = ["Paris"]  # the grammar then writes it whole
    answer = ask(formats_stack, "harmony", "llamacpp", tools=[paris], max_tokens=120, logit_bias=bias)
    calls = answer.choices[0].message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [CALL], answer
