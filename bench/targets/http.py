"""HTTP targets: an OpenAI-compatible ``/v1/completions`` stream, the gateway's other generation
APIs streamed (``/v1/chat/completions``, ``/v1/responses``, Anthropic's ``/v1/messages``) and
llama.cpp's native ``/completion``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import httpx

from bench.measure import BenchError, Recorder, RequestResult


def _client(timeout: float, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout), limits=limits, transport=transport)


def _json_value(text: str) -> object:
    """A command-line option value: parsed when it is JSON (numbers, true, objects), else the string."""
    try:
        value: object = json.loads(text)
    except ValueError:
        return text
    return value


async def sse_events(response: httpx.Response, target: str) -> AsyncIterator[dict[str, Any]]:
    """The JSON payloads of a server-sent-events stream, up to ``data: [DONE]`` or its end.

    An in-band ``{"error": ...}`` payload (sent once the response has started) raises.
    """
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # blank separators, comments, event names
        payload = line[len("data:") :].strip()
        if payload == "[DONE]":
            return
        try:
            event = json.loads(payload)
        except ValueError as error:
            raise BenchError(f"{target}: malformed SSE payload {payload[:200]!r}") from error
        if not isinstance(event, dict):
            raise BenchError(f"{target}: SSE payload is not an object: {payload[:200]!r}")
        if "error" in event:
            raise BenchError(f"{target}: error in the stream: {event['error']}")
        yield event


async def _check_status(response: httpx.Response, target: str) -> None:
    if response.status_code != 200:
        body = (await response.aread()).decode(errors="replace")
        raise BenchError(f"{target}: HTTP {response.status_code} from {response.url}: {body[:500]}")


class _HttpTarget:
    def __init__(self, name: str, url: str, timeout: float, transport: httpx.AsyncBaseTransport | None) -> None:
        self.name = name
        self.url = url
        self._client = _client(timeout, transport)

    async def _post(self, body: Mapping[str, object], read: Reader) -> RequestResult:
        recorder = Recorder()
        try:
            async with self._client.stream("POST", self.url, json=body) as response:
                await _check_status(response, self.name)
                tokens = await read(sse_events(response, self.name), recorder, self.name)
        except httpx.HTTPError as error:
            raise BenchError(f"{self.name}: {type(error).__name__} from {self.url}: {error}") from error
        return recorder.finish(tokens)

    async def aclose(self) -> None:
        await self._client.aclose()


Events = AsyncIterator[dict[str, Any]]
Reader = Callable[[Events, Recorder, str], Awaitable[int]]


async def read_openai(events: Events, recorder: Recorder, target: str) -> int:
    """Mark each chunk with text (a completion's, or a chat delta's content); the completion
    tokens of the usage chunk."""
    usage: Mapping[str, Any] | None = None
    async for event in events:
        choices = event.get("choices") or ()
        if any(choice.get("text") or (choice.get("delta") or {}).get("content") for choice in choices):
            recorder.chunk()
        usage = event.get("usage") or usage
    if usage is None or "completion_tokens" not in usage:
        raise BenchError(f"{target}: no usage in the stream (does it honour stream_options.include_usage?)")
    return int(usage["completion_tokens"])


async def read_llama_server(events: Events, recorder: Recorder, target: str) -> int:
    """Mark each event with content; the tokens_predicted of the final ``"stop": true`` event."""
    tokens: int | None = None
    async for event in events:
        if event.get("stop"):
            tokens = int(event["tokens_predicted"])
        elif event.get("content"):
            recorder.chunk()
    if tokens is None:
        raise BenchError(f"{target}: the stream ended without a final stop event")
    return tokens


async def read_responses(events: Events, recorder: Recorder, target: str) -> int:
    """Mark each ``output_text.delta``; the output tokens of the last event's usage."""
    tokens: int | None = None
    async for event in events:
        kind = event.get("type")
        if kind == "response.output_text.delta":
            recorder.chunk()
        elif kind == "error":
            raise BenchError(f"{target}: error in the stream: {event.get('message')}")
        elif kind in ("response.completed", "response.incomplete"):
            tokens = int(event["response"]["usage"]["output_tokens"])
    if tokens is None:
        raise BenchError(f"{target}: the stream ended without response.completed")
    return tokens


async def read_anthropic(events: Events, recorder: Recorder, target: str) -> int:
    """Mark each ``text_delta``; the output tokens of ``message_delta``."""
    tokens: int | None = None
    async for event in events:
        kind = event.get("type")
        if kind == "content_block_delta" and event["delta"].get("type") == "text_delta":
            recorder.chunk()
        elif kind == "message_delta":
            tokens = int(event["usage"]["output_tokens"])
    if tokens is None:
        raise BenchError(f"{target}: the stream ended without message_delta")
    return tokens


def _user(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


# kind -> (path under /v1, the request's own fields for a prompt and a length, its reader)
USAGE = {"stream_options": {"include_usage": True}}
APIS: dict[str, tuple[str, Callable[[str, int], dict[str, object]], Reader]] = {
    "openai": ("/completions", lambda p, n: {"prompt": p, "max_tokens": n, **USAGE}, read_openai),
    "chat": ("/chat/completions", lambda p, n: {"messages": _user(p), "max_tokens": n, **USAGE}, read_openai),
    "responses": ("/responses", lambda p, n: {"input": p, "max_output_tokens": n}, read_responses),
    "anthropic": ("/messages", lambda p, n: {"messages": _user(p), "max_tokens": n}, read_anthropic),
}


class OpenAITarget(_HttpTarget):
    """``POST {base}/v1/completions`` streaming with usage in the last chunk, or another of the
    generation APIs (``api``: ``chat``, ``responses``, ``anthropic``), greedy and ignore_eos."""

    def __init__(
        self,
        name: str,
        base_url: str,
        options: Mapping[str, str],
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
        api: str = "openai",
    ) -> None:
        base = base_url.rstrip("/")
        path, self._fields, self._read = APIS[api]
        super().__init__(name, base + (path if base.endswith("/v1") else "/v1" + path), timeout, transport)
        self.extra = {key: _json_value(value) for key, value in options.items() if key != "model"}
        self.model = options.get("model")

    async def stream(self, prompt: str, max_tokens: int) -> RequestResult:
        body: dict[str, object] = {
            **({"model": self.model} if self.model else {}),
            **self._fields(prompt, max_tokens),
            "stream": True,
            "ignore_eos": True,
            "temperature": 0,
            **self.extra,
        }
        return await self._post(body, self._read)


class LlamaServerTarget(_HttpTarget):
    """``POST {base}/completion`` streaming (llama.cpp's native API: no [DONE], a final stop event)."""

    def __init__(
        self, name: str, base_url: str, timeout: float, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(name, base_url.rstrip("/") + "/completion", timeout, transport)

    async def stream(self, prompt: str, max_tokens: int) -> RequestResult:
        body = {"prompt": prompt, "n_predict": max_tokens, "ignore_eos": True, "stream": True, "temperature": 0}
        return await self._post(body, read_llama_server)
