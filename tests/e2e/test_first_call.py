"""Every client's first call works on the stack ``make up`` starts: the demo model served by
both engines under one name, requests naming only the model (no ``engine`` field, which some
clients cannot send). The openai SDK, LangChain and LiteLLM (as a client library) complete
chat, completions, tools and json_schema; each engine answers when the router's engine order
puts it first (a second router and gateway over the same engines, with the other order)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import openai
import pydantic
import pytest
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from tests.conformance.engines import VLLM
from tests.e2e.conftest import E2E_ENGINES, load_body, start_stack, stop_stack
from tests.helpers import ServiceProcess, openai_client

DEMO = "switchyard-demo"  # the name make up serves the demo model under, on both engines
ORDERS = {"llamacpp": "llamacpp,vllm", "vllm": "vllm,llamacpp"}
ENGINES = [e.name for e in E2E_ENGINES]
TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"enum": ["UTC", "CET"]}}, "required": ["tz"]},
    },
}


class Answer(pydantic.BaseModel):
    tz: Literal["UTC", "CET"]  # closed: a random model answers it in a few tokens


@pytest.fixture(scope="module")
def up_like(model_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Engines with the demo model loaded under one name, as make up has them, and one gateway
    per engine order: engine name -> the base URL whose router puts that engine first."""
    logs = tmp_path_factory.mktemp("first-call")
    stack = start_stack(model_root, logs)
    extra: list[ServiceProcess] = []
    try:
        for engine in E2E_ENGINES:
            answer = httpx.post(
                f"{stack.url}/v1/models/load", json={**load_body(engine), "served_model_name": DEMO}, timeout=600
            )
            assert answer.status_code == 200, answer.text
        urls = {"llamacpp": stack.url}  # the default order
        if VLLM in E2E_ENGINES:
            backends = ",".join(f"{name}={service.address}" for name, service in stack.engines.items())
            router = ServiceProcess(
                "services.router", ["--backends", backends, "--engine-order", ORDERS["vllm"]], logs / "router-vllm.log"
            ).start()
            gateway = ServiceProcess(
                "gateway", ["--router", router.address], logs / "gateway-vllm.log", http=True
            ).start()
            extra += [gateway, router]
            urls["vllm"] = gateway.url
        yield urls
    finally:
        for service in extra:
            service.stop()
        stop_stack(stack)


def sdk(url: str) -> openai.OpenAI:
    return openai_client(f"{url}/v1", 300)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_openai_sdk_with_the_model_name_alone(up_like: dict[str, str], engine: str) -> None:
    client = sdk(up_like[engine])
    chat = client.chat.completions.create(model=DEMO, messages=[{"role": "user", "content": "Hi"}], max_tokens=8)
    assert chat.choices[0].message.content is not None and (chat.model_extra or {})["engine"] == engine
    text = client.completions.create(model=DEMO, prompt="Hello", max_tokens=8)
    assert (text.model_extra or {})["engine"] == engine
    tools = client.chat.completions.create(
        model=DEMO,
        messages=[{"role": "user", "content": "Time?"}],
        tools=[TOOL],
        tool_choice="required",
        max_tokens=300,
        parallel_tool_calls=False,
    )
    calls: Any = tools.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls][:1] == ["get_time"]
    parsed = client.chat.completions.parse(
        model=DEMO, messages=[{"role": "user", "content": "Time zone?"}], response_format=Answer, max_tokens=300
    )
    assert isinstance(parsed.choices[0].message.parsed, Answer)


@pytest.mark.parametrize("engine", ENGINES)
def test_langchain_with_the_model_name_alone(up_like: dict[str, str], engine: str) -> None:
    llm = ChatOpenAI(base_url=f"{up_like[engine]}/v1", api_key="unused", model=DEMO, max_tokens=300)
    assert llm.invoke("Hi").content is not None

    @tool
    def get_time(tz: Literal["UTC", "CET"]) -> str:
        """The time now in a time zone."""
        return "12:00"

    message = llm.bind_tools([get_time], tool_choice="required", parallel_tool_calls=False).invoke("What time is it?")
    assert [call["name"] for call in message.tool_calls][:1] == ["get_time"]
    assert isinstance(llm.with_structured_output(Answer, method="json_schema").invoke("Which zone?"), Answer)


@pytest.mark.parametrize("engine", ENGINES)
def test_litellm_with_the_model_name_alone(up_like: dict[str, str], engine: str) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of its price list from the internet
    import litellm

    common: Any = {"model": f"openai/{DEMO}", "api_base": f"{up_like[engine]}/v1", "api_key": "unused"}
    chat = litellm.completion(**common, messages=[{"role": "user", "content": "Hi"}], max_tokens=8)
    assert chat.choices[0].message.content is not None
    text = litellm.text_completion(**common, prompt="Hello", max_tokens=8)
    assert text.choices[0].text is not None
    called = litellm.completion(
        **common,
        messages=[{"role": "user", "content": "Time?"}],
        tools=[TOOL],
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=300,
    )
    assert called.choices[0].message.tool_calls[0].function.name == "get_time"
    schema: Any = {"type": "json_schema", "json_schema": {"name": "a", "schema": Answer.model_json_schema()}}
    structured = litellm.completion(
        **common, messages=[{"role": "user", "content": "Zone?"}], response_format=schema, max_tokens=300
    )
    Answer.model_validate(json.loads(structured.choices[0].message.content))
