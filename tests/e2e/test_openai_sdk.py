"""The real ``openai`` SDK, sync and async, streaming and not, against each engine."""

from __future__ import annotations

import openai
import pytest

from tests.e2e.conftest import E2E_ENGINES, SERVED, Stack
from tests.helpers import openai_client

ENGINE_NAMES = [e.name for e in E2E_ENGINES]


def client(stack: Stack) -> openai.OpenAI:
    return openai_client(f"{stack.url}/v1", 120)


def async_client(stack: Stack) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_completion(stack: Stack, engine: str) -> None:
    answer = client(stack).completions.create(
        model=SERVED[engine], prompt="日本語のテキスト", max_tokens=12, temperature=0, extra_body={"ignore_eos": True}
    )
    assert answer.object == "text_completion" and answer.model == SERVED[engine]
    assert answer.choices[0].text and answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens == 12


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_completion_stream_matches_the_whole_answer(stack: Stack, engine: str) -> None:
    kwargs = {"model": SERVED[engine], "prompt": "ストリーミング", "max_tokens": 16, "temperature": 0}
    whole = client(stack).completions.create(**kwargs, extra_body={"ignore_eos": True})  # type: ignore[call-overload]
    chunks = list(
        client(stack).completions.create(
            **kwargs,  # type: ignore[call-overload]
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"ignore_eos": True},
        )
    )
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole.choices[0].text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 16
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert all(c.model == SERVED[engine] for c in chunks)


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_chat(stack: Stack, engine: str) -> None:
    answer = client(stack).chat.completions.create(
        model=SERVED[engine],
        messages=[{"role": "system", "content": "短く"}, {"role": "user", "content": "こんにちは"}],
        max_tokens=8,
        temperature=0,
        extra_body={"engine": engine, "ignore_eos": True},
    )
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.role == "assistant" and answer.choices[0].message.content
    assert answer.usage is not None and answer.usage.completion_tokens == 8 and answer.usage.prompt_tokens > 5


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_chat_stream_with_usage(stack: Stack, engine: str) -> None:
    stream = client(stack).chat.completions.create(
        model=SERVED[engine],
        messages=[{"role": "user", "content": "Hello"}],
        max_tokens=10,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 10


@pytest.mark.parametrize("engine", ENGINE_NAMES)
async def test_async_client_streams_and_not(stack: Stack, engine: str) -> None:
    async with async_client(stack) as aclient:
        whole = await aclient.chat.completions.create(
            model=SERVED[engine], messages=[{"role": "user", "content": "Hi"}], max_tokens=6, temperature=0, seed=7
        )
        assert whole.choices[0].message.content is not None
        stream = await aclient.completions.create(
            model=SERVED[engine], prompt="Hi", max_tokens=6, temperature=0, stream=True
        )
        texts = [chunk.choices[0].text async for chunk in stream if chunk.choices]
        assert "".join(texts)


def stop_string_in(text: str) -> str:
    """Two characters from the second half of ``text`` an engine can match: printable ASCII,
    since U+FFFD in the text stands for bytes of a character still incomplete, which llama-server
    matches stop strings against before any replacement happens."""
    middle = len(text) // 2
    for start in [*range(middle, len(text) - 1), *range(1, middle)]:
        stop = text[start : start + 2]
        if stop.isascii() and stop.isprintable():
            return stop
    pytest.fail(f"no printable ASCII pair to stop on in {text!r}")


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_logprobs_and_stop(stack: Stack, engine: str) -> None:
    full = client(stack).completions.create(
        model=SERVED[engine], prompt="The fox", max_tokens=24, temperature=0, extra_body={"ignore_eos": True}
    )
    text = full.choices[0].text
    stop = stop_string_in(text)
    stopped = client(stack).completions.create(
        model=SERVED[engine], prompt="The fox", max_tokens=24, temperature=0, stop=[stop], logprobs=2
    )
    assert stopped.choices[0].text == text[: text.index(stop)]
    assert stopped.choices[0].finish_reason == "stop"
    logprobs = stopped.choices[0].logprobs
    assert logprobs is not None and logprobs.token_logprobs and all(lp <= 0 for lp in logprobs.token_logprobs)


def test_models_lists_what_is_loaded(stack: Stack) -> None:
    ids = {m.id for m in client(stack).models.list()}
    assert {SERVED[e] for e in ENGINE_NAMES} <= ids
