"""The shapes of OpenAI's completion and chat completion answers as the gateway builds them:
TypedDicts, so mypy checks each object at no cost at run time, and FastAPI shows them in /docs."""

from __future__ import annotations

from typing import Literal, NotRequired

from typing_extensions import TypedDict  # pydantic (so /docs) needs this one before Python 3.12


class TokensDetails(TypedDict):
    cached_tokens: int


class CompletionDetails(TypedDict):
    reasoning_tokens: int


class Usage(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: TokensDetails
    completion_tokens_details: CompletionDetails


class CompletionLogprobs(TypedDict):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class TopLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int]


class TokenLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int]
    top_logprobs: list[TopLogprob]


class ChatLogprobs(TypedDict):
    content: list[TokenLogprob]


class CallFunctionOut(TypedDict):
    name: str
    arguments: str


class OutToolCall(TypedDict):
    id: str
    type: Literal["function"]
    function: CallFunctionOut


class CallFunctionDelta(TypedDict):
    name: NotRequired[str]
    arguments: str


class OutToolCallDelta(TypedDict):
    index: int
    id: NotRequired[str]
    type: NotRequired[Literal["function"]]
    function: CallFunctionDelta


class ChatMessageOut(TypedDict):
    role: Literal["assistant"]
    content: str | None
    # The model's reasoning, apart from its answer: llama-server's and DeepSeek's name, and
    # vLLM's current one, so a client of either reads it.
    reasoning_content: NotRequired[str]
    reasoning: NotRequired[str]
    tool_calls: NotRequired[list[OutToolCall]]


class ChatDelta(TypedDict, total=False):
    role: Literal["assistant"]
    content: str | None
    reasoning_content: str
    reasoning: str
    tool_calls: list[OutToolCallDelta]


class CompletionChoice(TypedDict):
    index: int
    text: str
    finish_reason: str | None
    logprobs: CompletionLogprobs | None
    stop_reason: NotRequired[str | int | None]


class ChatChoice(TypedDict):
    index: int
    message: ChatMessageOut
    finish_reason: str | None
    logprobs: ChatLogprobs | None
    stop_reason: str | int | None


class ChatChunkChoice(TypedDict):
    index: int
    delta: ChatDelta
    finish_reason: str | None
    logprobs: ChatLogprobs | None


class Response(TypedDict):
    """A whole completion or chat completion."""

    id: str
    object: Literal["text_completion", "chat.completion"]
    created: int
    model: str
    choices: list[CompletionChoice | ChatChoice]
    usage: Usage
    engine: NotRequired[str]


class Chunk(TypedDict):
    """One server-sent event of a streamed completion or chat completion."""

    id: str
    object: Literal["text_completion", "chat.completion.chunk"]
    created: int
    model: str
    choices: list[CompletionChoice | ChatChunkChoice]
    usage: NotRequired[Usage]
    engine: NotRequired[str]
