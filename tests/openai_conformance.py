"""Every OpenAI answer the tests see, checked against the openai SDK's own response types: a
check of the wire format that does not rest on our reading of the spec.

Installed for the whole test session (tests/conftest.py): the HTTP transports of httpx (our
tests' own calls) and httpx2 (the openai SDK's, LangChain's) hand each answer from a
switchyard route to ``check`` as it is read, whole bodies and each server-sent event alike.
Strict: the SDK's types must validate without coercion, and a field the type does not declare
fails unless it is one of switchyard's documented extras below. An error answer must have
OpenAI's error shape.

/v1/responses (and GET of a stored one) is checked against the SDK's ``Response`` and each event
of its stream against ``ResponseStreamEvent``, the event's name its type and the sequence
numbers counting from 0. Anthropic's routes (/v1/messages, count_tokens) are checked the same
way against the anthropic SDK's ``Message``, ``RawMessageStreamEvent``, ``MessageTokensCount``
and ``ErrorResponse``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal, Union

import pydantic
from openai.types import Completion, CompletionChoice, CreateEmbeddingResponse, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice as ChatChoice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDelta
from openai.types.responses import Response, ResponseStreamEvent

# What switchyard adds to OpenAI's objects, each documented in the README: the engine that
# answered, vLLM's stop_reason, the reasoning (llama-server's and vLLM's names), and the
# catalogue's per-engine state.
EXTRAS: dict[type[pydantic.BaseModel], frozenset[str]] = {
    ChatCompletion: frozenset({"engine"}),
    ChatCompletionChunk: frozenset({"engine"}),
    Completion: frozenset({"engine"}),
    ChatChoice: frozenset({"stop_reason"}),
    CompletionChoice: frozenset({"stop_reason"}),
    ChunkChoice: frozenset(),
    ChatCompletionMessage: frozenset({"reasoning_content", "reasoning"}),
    ChoiceDelta: frozenset({"reasoning_content", "reasoning"}),
    Model: frozenset({"engine", "state", "replicas", "aliases", "engines", "alias_of"}),
}
ROUTES: dict[str, tuple[type[pydantic.BaseModel], type[pydantic.BaseModel]]] = {
    "/v1/chat/completions": (ChatCompletion, ChatCompletionChunk),
    "/v1/completions": (Completion, Completion),
    "/v1/embeddings": (CreateEmbeddingResponse, CreateEmbeddingResponse),
}


RESPONSES = "/v1/responses"
ANTHROPIC = "/v1/messages"


class NotConformant(AssertionError):
    pass


class ResponseDeleted(pydantic.BaseModel):
    """DELETE /v1/responses/{id} (the SDK returns nothing; OpenAI's API reference has this)."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    id: str
    object: Literal["response"]
    deleted: bool


class ErrorDetail(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    message: str
    type: str
    param: str | None
    code: int | str | None


class ErrorBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    error: ErrorDetail


def _extras(value: Any, where: str) -> None:
    """Fail on a field the SDK's type does not declare (and switchyard does not document)."""
    if isinstance(value, pydantic.BaseModel):
        allowed = EXTRAS.get(type(value), frozenset())
        unknown = set(value.model_extra or {}) - allowed
        if unknown:
            raise NotConformant(f"{where}: {type(value).__name__} has fields OpenAI does not define: {sorted(unknown)}")
        for name in type(value).model_fields:
            _extras(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _extras(item, f"{where}[{i}]")


def _validate(kind: type[pydantic.BaseModel], data: Any, where: str) -> None:
    try:
        value = kind.model_validate(data, strict=True)
    except pydantic.ValidationError as exc:
        raise NotConformant(f"{where}: not a {kind.__name__}: {exc}") from None
    _extras(value, where)


def _sse_events(body: bytes, where: str) -> list[tuple[str | None, Any]]:
    """The (name, JSON payload) of each event of a stream whose events are named."""
    events = []
    for block in body.decode().split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        name = next((line[6:].strip() for line in lines if line.startswith("event:")), None)
        data = "".join(line[5:].strip() for line in lines if line.startswith("data:"))
        if data == "[DONE]":
            raise NotConformant(f"{where}: [DONE] ends no stream of this API")
        events.append((name, json.loads(data)))
    return events


def _check_named_stream(body: bytes, where: str, kind: Any) -> None:
    adapter = pydantic.TypeAdapter(kind)
    for i, (name, data) in enumerate(_sse_events(body, where)):
        if name != data.get("type"):
            raise NotConformant(f"{where} event {i}: named {name!r}, of type {data.get('type')!r}")
        if "sequence_number" in data and data["sequence_number"] != i:
            raise NotConformant(f"{where} event {i}: sequence_number {data['sequence_number']}")
        try:
            value = adapter.validate_python(data, strict=True)
        except pydantic.ValidationError as exc:
            raise NotConformant(f"{where} event {i}: not a {name} event: {exc}") from None
        _extras(value, f"{where} event {i}")


def check_responses(path: str, status: int, content_type: str, body: bytes) -> None:
    if status >= 400:
        if "json" in content_type:
            _validate(ErrorBody, json.loads(body), f"{path} {status}")
    elif "text/event-stream" in content_type:
        _check_named_stream(body, path, ResponseStreamEvent)
    else:
        data = json.loads(body)
        _validate(ResponseDeleted if "deleted" in data else Response, data, path)


def check_anthropic(path: str, status: int, content_type: str, body: bytes) -> None:
    from anthropic.types import ErrorResponse, Message, MessageTokensCount, RawMessageStreamEvent

    if status >= 400:
        if "json" in content_type:
            _validate(ErrorResponse, json.loads(body), f"{path} {status}")
    elif "text/event-stream" in content_type:
        _check_named_stream(body, path, Union[RawMessageStreamEvent, ErrorResponse])  # noqa: UP007 (an Annotated union)
    else:
        _validate(MessageTokensCount if path.endswith("/count_tokens") else Message, json.loads(body), path)


def check(path: str, status: int, content_type: str, body: bytes) -> None:
    """Check one answer of a switchyard route (a whole body, or a stream's events)."""
    if path.endswith(RESPONSES) or RESPONSES + "/" in path:
        check_responses(path, status, content_type, body)
        return
    if path.endswith(ANTHROPIC) or path.endswith(ANTHROPIC + "/count_tokens"):
        check_anthropic(path, status, content_type, body)
        return
    route = next((r for r in ROUTES if path.endswith(r)), None)
    is_models = path.endswith("/v1/models")
    if route is None and not is_models:
        return
    if status >= 400:
        if "json" in content_type:
            _validate(ErrorBody, json.loads(body), f"{path} {status}")
        return
    if is_models:
        listing = json.loads(body)
        if listing.get("object") != "list":
            raise NotConformant(f"{path}: object is {listing.get('object')!r}, not 'list'")
        for i, entry in enumerate(listing.get("data", [])):
            _validate(Model, entry, f"{path} data[{i}]")
        return
    whole, chunk = ROUTES[route]  # type: ignore[index]
    if "text/event-stream" not in content_type:
        data = json.loads(body)
        if route == "/v1/embeddings":
            _base64_vectors(data)
        _validate(whole, data, path)
        return
    events = [line[5:].strip() for line in body.decode().split("\n") if line.startswith("data:")]
    if events and events[-1] == b"[DONE]".decode():
        events.pop()
    for i, event in enumerate(events):
        data = json.loads(event)
        if "error" in data:
            _validate(ErrorBody, data, f"{path} event {i}")
            continue
        if chunk is Completion:  # the SDK reuses Completion for chunks; OpenAI's have null until the end
            for choice in data.get("choices", []):
                if choice.get("finish_reason", "") is None:
                    choice["finish_reason"] = "stop"
        _validate(chunk, data, f"{path} event {i}")


def _base64_vectors(data: Any) -> None:
    """encoding_format base64: a vector is base64 text of float32s (the SDK types only lists)."""
    for item in data.get("data", []):
        vector = item.get("embedding")
        if isinstance(vector, str):
            raw = base64.b64decode(vector, validate=True)
            if len(raw) % 4:
                raise NotConformant("a base64 embedding is not whole float32s")
            item["embedding"] = [0.0] * (len(raw) // 4)


class _Checks:
    """Checks what a response body stream gave once it is whole."""

    def __init__(self, stream: Any, path: str, status: int, content_type: str) -> None:
        self._stream = stream
        self._where = (path, status, content_type)
        self._read: list[bytes] = []

    def _done(self) -> None:
        check(*self._where, b"".join(self._read))


def _checked_streams(module: Any) -> tuple[type, type]:
    """The library's own stream types, checking (its Response insists on them)."""

    class Sync(_Checks, module.SyncByteStream):  # type: ignore[misc]
        def __iter__(self) -> Iterator[bytes]:
            for piece in self._stream:
                self._read.append(piece)
                yield piece
            self._done()

        def close(self) -> None:
            self._stream.close()

    class Async(_Checks, module.AsyncByteStream):  # type: ignore[misc]
        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for piece in self._stream:
                self._read.append(piece)
                yield piece
            self._done()

        async def aclose(self) -> None:
            await self._stream.aclose()

    return Sync, Async


def _wrap(response: Any, request: Any, kind: type) -> Any:
    if request.url.host in ("127.0.0.1", "localhost"):
        content_type = response.headers.get("content-type", "")
        response.stream = kind(response.stream, request.url.path, response.status_code, content_type)
    return response


def install(monkeypatch: Any) -> None:
    """Check every answer the transports of httpx and httpx2 receive, for this session."""
    import httpx
    import httpx2

    for module in (httpx, httpx2):
        sync_handle = module.HTTPTransport.handle_request
        async_handle = module.AsyncHTTPTransport.handle_async_request
        sync_kind, async_kind = _checked_streams(module)

        def handle(self: Any, request: Any, _inner: Any = sync_handle, _kind: type = sync_kind) -> Any:
            return _wrap(_inner(self, request), request, _kind)

        async def handle_async(self: Any, request: Any, _inner: Any = async_handle, _kind: type = async_kind) -> Any:
            return _wrap(await _inner(self, request), request, _kind)

        monkeypatch.setattr(module.HTTPTransport, "handle_request", handle)
        monkeypatch.setattr(module.AsyncHTTPTransport, "handle_async_request", handle_async)
