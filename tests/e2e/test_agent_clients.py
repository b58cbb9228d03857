"""The clients agents use, unmodified, against each engine: the openai SDK's Responses API
(``responses.create`` and ``responses.stream``), the OpenAI Agents SDK running an agent with a
tool through its Responses model, and the anthropic SDK (``messages.create``,
``messages.stream``, ``count_tokens``). Every answer is also checked against the SDKs' own types
(tests/openai_conformance.py).

The demo model has random weights: it rarely ends an answer or calls a tool by itself, so calls
are forced (tool_choice required, Anthropic's ``any``), which the engines decode under the
functions' schemas, and answers that must end are decoded under a small JSON schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import anthropic
import jsonschema
import openai
import pydantic
import pytest
from agents import Agent, ModelSettings, OpenAIResponsesModel, RunConfig, Runner, function_tool

from tests.e2e.conftest import E2E_ENGINES, SERVED, Stack

ENGINE_NAMES = [e.name for e in E2E_ENGINES]
TIME = {
    "type": "object",
    "properties": {"tz": {"enum": ["UTC", "CET"]}},
    "required": ["tz"],
    "additionalProperties": False,
}
TOOL: Any = {"type": "function", "name": "get_time", "description": "The time now", "parameters": TIME}
EXACT: Any = {"ignore_eos": True}


class Zone(pydantic.BaseModel):
    tz: Literal["UTC", "CET"]  # every answer exactly max_output_tokens long, so runs compare


@pytest.fixture
def oai(stack: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{stack.url}/v1", api_key="unused", max_retries=0, timeout=120) as client:
        yield client


@pytest.fixture
def claude(stack: Stack) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=stack.url, api_key="unused", max_retries=0, timeout=120) as client:
        yield client


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_responses_text_whole_and_streamed(oai: openai.OpenAI, engine: str) -> None:
    kwargs: Any = {"model": SERVED[engine], "input": "日本語で", "max_output_tokens": 12, "temperature": 0}
    whole = oai.responses.create(**kwargs, instructions="短く", extra_body=EXACT)
    assert whole.status == "incomplete" and whole.incomplete_details is not None
    assert whole.output_text and whole.usage is not None and whole.usage.output_tokens == 12
    with oai.responses.stream(**kwargs, instructions="短く", extra_body=EXACT) as stream:
        events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.incomplete"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == whole.output_text


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_responses_function_tool_round_trip(oai: openai.OpenAI, engine: str) -> None:
    kwargs: Any = {"model": SERVED[engine], "tools": [TOOL], "max_output_tokens": 200, "temperature": 0}
    first = oai.responses.create(**kwargs, input="What time is it?", tool_choice="required", parallel_tool_calls=False)
    [call] = [item for item in first.output if item.type == "function_call"]
    assert first.status == "completed" and call.name == "get_time"
    jsonschema.validate(json.loads(call.arguments), TIME)
    with oai.responses.stream(
        **kwargs, input="What time is it?", tool_choice="required", parallel_tool_calls=False
    ) as stream:
        streamed = stream.get_final_response()
    assert [(c.name, c.arguments) for c in streamed.output if c.type == "function_call"] == [
        (call.name, call.arguments)
    ]
    given_back: Any = [item.model_dump(exclude_none=True) for item in first.output]
    output: Any = {"type": "function_call_output", "call_id": call.call_id, "output": "12:00"}
    turns: Any = [{"role": "user", "content": "What time is it?"}, *given_back, output]
    second = oai.responses.create(**{**kwargs, "max_output_tokens": 4}, input=turns)
    assert first.usage is not None and second.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_responses_json_schema_output(oai: openai.OpenAI, engine: str) -> None:
    text: Any = {"format": {"type": "json_schema", "name": "time", "schema": TIME, "strict": True}}
    kwargs: Any = {"model": SERVED[engine], "input": "Which zone?", "text": text, "max_output_tokens": 100}
    whole = oai.responses.create(**kwargs)
    assert whole.status == "completed"
    jsonschema.validate(json.loads(whole.output_text), TIME)
    with oai.responses.stream(**kwargs) as stream:
        final = stream.get_final_response()
    jsonschema.validate(json.loads(final.output_text), TIME)


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_responses_follow_up_by_previous_response_id_and_the_store(oai: openai.OpenAI, engine: str) -> None:
    kwargs: Any = {"model": SERVED[engine], "max_output_tokens": 6, "temperature": 0, "extra_body": EXACT}
    first = oai.responses.create(**kwargs, input="Hello")
    second = oai.responses.create(**kwargs, input="And then?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    assert first.usage is not None and second.usage is not None
    # The follow-up's prompt holds the first turn and its answer.
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens
    assert oai.responses.retrieve(first.id).output_text == first.output_text
    oai.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        oai.responses.create(**kwargs, input="x", previous_response_id=first.id)
    with pytest.raises(openai.BadRequestError, match="web_search"):
        oai.responses.create(**kwargs, input="x", tools=[{"type": "web_search"}])


@pytest.mark.parametrize("engine", ENGINE_NAMES)
async def test_an_openai_agent_runs_its_tool_through_the_responses_model(stack: Stack, engine: str) -> None:
    asked: list[str] = []

    @function_tool
    def get_time(tz: Literal["UTC", "CET"]) -> str:
        """The time now in a time zone."""
        asked.append(tz)
        return "12:00"

    # A forced first call; then the tool choice is auto and the answer an output type, so that the
    # random model's second turn ends (decoded under its schema) rather than running out of tokens.
    settings = ModelSettings(tool_choice="required", parallel_tool_calls=False, max_tokens=300, temperature=0)
    async with openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key="unused", max_retries=0, timeout=120) as client:
        model = OpenAIResponsesModel(model=SERVED[engine], openai_client=client)
        agent = Agent(name="clock", instructions="Tell the time.", tools=[get_time], model=model, output_type=Zone)
        agent.model_settings = settings
        result = await Runner.run(agent, "What time is it?", max_turns=4, run_config=RunConfig(tracing_disabled=True))
    assert asked and asked[0] in ("UTC", "CET")  # the forced call ran the tool
    assert isinstance(result.final_output, Zone) and len(result.raw_responses) == 2


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_anthropic_messages_whole_and_streamed(claude: anthropic.Anthropic, engine: str) -> None:
    kwargs: Any = {
        "model": SERVED[engine],
        "max_tokens": 12,
        "system": "短く",
        "messages": [{"role": "user", "content": "こんにちは"}],
        "extra_body": {"temperature": 0, **EXACT},
    }
    whole = claude.messages.create(**kwargs)
    assert whole.stop_reason == "max_tokens" and whole.usage.output_tokens == 12
    assert [block.type for block in whole.content] == ["text"]
    with claude.messages.stream(**kwargs) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == whole.content[0].text == final.content[0].text  # type: ignore[union-attr]
    prompt = whole.usage.input_tokens + (whole.usage.cache_read_input_tokens or 0)  # cached or not
    assert final.usage.input_tokens + (final.usage.cache_read_input_tokens or 0) == prompt
    counted = claude.messages.count_tokens(
        model=SERVED[engine], system="短く", messages=[{"role": "user", "content": "こんにちは"}]
    )
    assert counted.input_tokens == prompt


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_anthropic_tool_use_and_tool_result_round_trip(claude: anthropic.Anthropic, engine: str) -> None:
    tools: Any = [{"name": "get_time", "description": "The time now", "input_schema": TIME}]
    ask: Any = [{"role": "user", "content": "What time is it?"}]
    choice: Any = {"type": "any", "disable_parallel_tool_use": True}
    kwargs: Any = {"model": SERVED[engine], "tools": tools, "extra_body": {"temperature": 0}}
    first = claude.messages.create(**kwargs, max_tokens=200, messages=ask, tool_choice=choice)
    [use] = [block for block in first.content if block.type == "tool_use"]
    assert first.stop_reason == "tool_use" and use.name == "get_time"
    jsonschema.validate(use.input, TIME)
    with claude.messages.stream(**kwargs, max_tokens=200, messages=ask, tool_choice=choice) as stream:
        streamed = stream.get_final_message()
    assert [(b.name, b.input) for b in streamed.content if b.type == "tool_use"] == [(use.name, use.input)]
    result: Any = {"type": "tool_result", "tool_use_id": use.id, "content": "12:00"}
    turns: Any = [*ask, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}]
    second = claude.messages.create(**kwargs, max_tokens=4, messages=turns)
    assert second.usage.input_tokens + (second.usage.cache_read_input_tokens or 0) > first.usage.input_tokens


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_anthropic_errors_are_anthropics(claude: anthropic.Anthropic, engine: str) -> None:
    ask: Any = [{"role": "user", "content": "x"}]
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.create(model="no-such-model", max_tokens=4, messages=ask)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        claude.messages.create(model=SERVED[engine], max_tokens=0, messages=ask)
    assert bad.value.body["type"] == "error" and "max_tokens" in bad.value.message  # type: ignore[index]
