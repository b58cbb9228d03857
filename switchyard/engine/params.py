"""Validated, engine-neutral views of Generate, Tokenize and Embed requests.

Both engines validate the same way so that a client cannot tell them apart by their errors:
``generation_from_proto`` checks ranges and shapes once and raises InvalidArgument with a
message naming the field.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.json_format import MessageToDict

from switchyard.contract import CHAT_ROLES, MAX_EMBED_INPUTS, MAX_LOGPROBS, MAX_STOP_STRINGS, REASONING_EFFORTS
from switchyard.engine.hub import ModelRef
from switchyard.engine.schema_check import load_bounded
from switchyard.engine.structured import (
    Constraint,
    Function,
    ToolPlan,
    constraint_from_proto,
    functions_from_proto,
    tool_plan,
)
from switchyard.errors import InvalidArgument
from switchyard.v1 import inference_pb2 as pb

# Engines report a zero probability as -inf or -FLT_MAX; the contract uses this finite floor.
MIN_LOGPROB = -9999.0
MAX_ARGUMENTS = 1024 * 1024  # a tool call's arguments sent back in a conversation
# A text longer than this many bytes per token of the context cannot fit it (tokens average 3-5
# bytes; runs of spaces or dashes reach a few dozen): refused before a child tokenizes it, so
# a 50 MiB prompt costs no engine gigabytes to find that out.
MAX_BYTES_PER_TOKEN = 48
# Ids and names end up in log lines and error messages: printable and short.
MAX_ID_CHARS = 256
SERVED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


@dataclass(frozen=True)
class ChatParams:
    messages: list[dict[str, Any]]  # as chat templates take them (tool call arguments as objects)
    functions: tuple[Function, ...]
    plan: ToolPlan
    add_generation_prompt: bool
    template_kwargs: dict[str, Any] = field(default_factory=dict)  # reasoning_effort's switches included
    reasoning_effort: str = ""  # "" the model's default, else one of REASONING_EFFORTS
    include_reasoning: bool = True

    @property
    def tools(self) -> list[dict[str, Any]]:
        """The functions as OpenAI tool objects, for the template."""
        return [f.template_json() for f in self.functions]

    @property
    def thinking(self) -> bool | None:
        """Whether the template is told to think (enable_thinking), if it is told."""
        value = self.template_kwargs.get("enable_thinking")
        return value if isinstance(value, bool) else None


@dataclass(frozen=True)
class GenerationParams:
    """A Generate request after validation; ``None`` means the engine's default."""

    request_id: str
    prompt: str | None = None
    chat: ChatParams | None = None
    prompt_token_ids: list[int] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None  # 0 disables the filter
    min_p: float | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repetition_penalty: float | None = None
    logit_bias: dict[int, float] = field(default_factory=dict)
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    ignore_eos: bool = False
    min_tokens: int = 0
    logprobs: int | None = None
    return_token_ids: bool = False
    constraint: Constraint | None = None  # decode under this JSON Schema

    @property
    def tool_plan(self) -> ToolPlan | None:
        return self.chat.plan if self.chat is not None else None


@dataclass(frozen=True)
class TokenizeParams:
    text: str | None
    chat: ChatParams | None
    add_special_tokens: bool
    return_pieces: bool


@dataclass(frozen=True)
class EmbedParams:
    request_id: str
    inputs: list[str | list[int]]  # texts (tokenized with special tokens) or token ids


def check_name(field: str, value: str) -> str:
    """A request id or model name: at most MAX_ID_CHARS printable characters (empty is allowed)."""
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(f"{field} is longer than {MAX_ID_CHARS} characters")
    if not value.isprintable():
        raise InvalidArgument(f"{field} has control characters")
    return value


def check_served_name(field: str, value: str, hub_id_ok: bool = False) -> str:
    """A name a model is served under (empty: none given): letters, digits and ``._:-``,
    starting with a letter or digit, at most 128; a hub id (``ORG/REPO[:QUANT]``) only where
    ``hub_id_ok`` (a pulled model's own name), so an alias can never take a hub model's name."""
    if not value or SERVED_NAME.fullmatch(value):
        return value
    if hub_id_ok and ModelRef.looks_like(value):
        return ModelRef.parse(value).name
    hint = " or a hub id ORG/REPO[:QUANT]" if hub_id_ok else ""
    raise InvalidArgument(
        f"{field} {value[:MAX_ID_CHARS]!r} must be 1 to 128 of letters, digits, '.', '_', ':' and '-', "
        f"starting with a letter or digit{hint}"
    )


def _check_range(name: str, value: float, low: float, high: float, above_low: bool = False) -> None:
    """``low <= value <= high`` (``low < value`` with ``above_low``); NaN and infinities fail."""
    inside = (low < value if above_low else low <= value) and value <= high
    if not math.isfinite(value) or not inside:
        bounds = f"greater than {low} and at most {high}" if above_low else f"between {low} and {high}"
        raise InvalidArgument(f"{name} must be {bounds}, got {value}")


def _tool_calls(i: int, msg: pb.ChatMessage) -> list[dict[str, Any]]:
    calls = []
    for j, call in enumerate(msg.tool_calls):
        arguments = load_bounded(call.arguments or "{}", f"chat.messages[{i}].tool_calls[{j}].arguments", MAX_ARGUMENTS)
        if not isinstance(arguments, dict):
            raise InvalidArgument(f"chat.messages[{i}].tool_calls[{j}].arguments must be a JSON object")
        calls.append({"id": call.id, "type": "function", "function": {"name": call.name, "arguments": arguments}})
    return calls


def openai_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as OpenAI sends them (tool call arguments as JSON text), for an engine's own
    chat layer; templates take them as ChatParams.messages has them (arguments as objects)."""
    out = []
    for message in messages:
        calls = message.get("tool_calls")
        if calls:
            message = {
                **message,
                "tool_calls": [
                    {**c, "function": {**c["function"], "arguments": json.dumps(c["function"]["arguments"])}}
                    for c in calls
                ],
            }
        out.append(message)
    return out


def chat_from_proto(chat: pb.ChatInput) -> ChatParams:
    if not chat.messages:
        raise InvalidArgument("chat.messages is empty")
    messages: list[dict[str, Any]] = []
    for i, msg in enumerate(chat.messages):
        if msg.role not in CHAT_ROLES:
            allowed = ", ".join(sorted(CHAT_ROLES))
            raise InvalidArgument(f"chat.messages[{i}].role {msg.role!r} is not one of {allowed}")
        entry: dict[str, Any] = {"role": msg.role, "content": msg.content}
        if msg.name:
            entry["name"] = msg.name
        if msg.tool_call_id:
            entry["tool_call_id"] = msg.tool_call_id
        if msg.tool_calls:
            if msg.role != "assistant":
                raise InvalidArgument(f"chat.messages[{i}] has tool_calls but is not the assistant's")
            entry["tool_calls"] = _tool_calls(i, msg)
        if msg.reasoning_content:
            if msg.role != "assistant":
                raise InvalidArgument(f"chat.messages[{i}] has reasoning_content but is not the assistant's")
            entry["reasoning_content"] = msg.reasoning_content
        messages.append(entry)
    functions = functions_from_proto(chat)
    add_prompt = chat.add_generation_prompt if chat.HasField("add_generation_prompt") else True
    kwargs = MessageToDict(chat.template_kwargs) if chat.HasField("template_kwargs") else {}
    effort = chat.reasoning_effort
    if effort:
        if effort not in REASONING_EFFORTS:
            raise InvalidArgument(f"chat.reasoning_effort {effort[:32]!r} is not one of {', '.join(REASONING_EFFORTS)}")
        # As vLLM's server: the template sees the level, and thinking switched off for "none"
        # unless the caller switched it explicitly.
        kwargs = {"reasoning_effort": effort, "enable_thinking": effort != "none", **kwargs}
    include = chat.include_reasoning if chat.HasField("include_reasoning") else True
    return ChatParams(messages, functions, tool_plan(chat, functions), add_prompt, kwargs, effort, include)


def _check_token_ids(name: str, ids: list[int], vocab_size: int) -> None:
    bad = next((t for t in ids if t >= vocab_size), None)
    if bad is not None:
        raise InvalidArgument(f"{name} has token id {bad} outside the vocabulary (size {vocab_size})")


def check_text_fits(what: str, size: int, max_model_len: int) -> None:
    """Refuse ``size`` characters of text that cannot fit the context (MAX_BYTES_PER_TOKEN)."""
    bound = max_model_len * MAX_BYTES_PER_TOKEN
    if max_model_len and size > bound:
        raise InvalidArgument(
            f"{what} has {size} characters; it cannot fit the model's context of {max_model_len} tokens "
            f"(at most {bound} characters are taken)"
        )


def chat_chars(chat: pb.ChatInput) -> int:
    return sum(len(m.content) + sum(len(c.arguments) for c in m.tool_calls) for m in chat.messages)


def _input_from_proto(
    req: pb.GenerateRequest, vocab_size: int, max_model_len: int
) -> tuple[str | None, ChatParams | None, list[int] | None]:
    which = req.WhichOneof("input")
    if which == "prompt":
        if not req.prompt:
            raise InvalidArgument("prompt is empty")
        check_text_fits("prompt", len(req.prompt), max_model_len)
        return req.prompt, None, None
    if which == "chat":
        check_text_fits("chat", chat_chars(req.chat), max_model_len)
        return None, chat_from_proto(req.chat), None
    if which == "prompt_token_ids":
        ids = list(req.prompt_token_ids.ids)
        if not ids:
            raise InvalidArgument("prompt_token_ids is empty")
        _check_token_ids("prompt_token_ids", ids, vocab_size)
        return None, None, ids
    raise InvalidArgument("no input: set one of prompt, chat or prompt_token_ids")


def _sampling_from_proto(s: pb.SamplingParams, vocab_size: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # (low, high, low excluded); an excluded 0 rather than a tiny minimum, which float32
    # rounding would make unreachable for a client sending that very minimum
    ranges = {
        "temperature": (0.0, 2.0, False),
        "top_p": (0.0, 1.0, True),
        "min_p": (0.0, 1.0, False),
        "presence_penalty": (-2.0, 2.0, False),
        "frequency_penalty": (-2.0, 2.0, False),
        "repetition_penalty": (0.0, 10.0, True),
    }
    for name, (low, high, above_low) in ranges.items():
        if s.HasField(name):  # type: ignore[arg-type]
            value = float(getattr(s, name))
            _check_range(name, value, low, high, above_low)
            out[name] = value
    if s.HasField("top_k"):
        if s.top_k < -1:
            raise InvalidArgument(f"top_k must be -1, 0 (disabled) or positive, got {s.top_k}")
        out["top_k"] = max(s.top_k, 0)  # 0: filter disabled
    if s.HasField("seed"):
        out["seed"] = s.seed
    for token, bias in s.logit_bias.items():
        _check_range(f"logit_bias[{token}]", bias, -100.0, 100.0)
    _check_token_ids("logit_bias", list(s.logit_bias), vocab_size)
    out["logit_bias"] = dict(s.logit_bias)
    return out


def _stopping_from_proto(s: pb.StoppingCriteria, vocab_size: int, max_model_len: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if s.HasField("max_tokens"):
        if s.max_tokens < 1:
            raise InvalidArgument(f"max_tokens must be at least 1, got {s.max_tokens}")
        if max_model_len and s.max_tokens > max_model_len:
            raise InvalidArgument(f"max_tokens {s.max_tokens} exceeds the model's context length {max_model_len}")
        out["max_tokens"] = s.max_tokens
    if s.HasField("min_tokens"):
        if s.min_tokens < 0:
            raise InvalidArgument(f"min_tokens must not be negative, got {s.min_tokens}")
        if s.HasField("max_tokens") and s.min_tokens > s.max_tokens:
            raise InvalidArgument("min_tokens must not exceed max_tokens")
        out["min_tokens"] = s.min_tokens
    if len(s.stop) > MAX_STOP_STRINGS:
        raise InvalidArgument(f"at most {MAX_STOP_STRINGS} stop strings, got {len(s.stop)}")
    if any(not stop for stop in s.stop):
        raise InvalidArgument("stop strings must not be empty")
    _check_token_ids("stop_token_ids", list(s.stop_token_ids), vocab_size)
    out["stop"] = list(s.stop)
    out["stop_token_ids"] = list(s.stop_token_ids)
    out["ignore_eos"] = s.ignore_eos
    return out


def generation_from_proto(req: pb.GenerateRequest, vocab_size: int, max_model_len: int) -> GenerationParams:
    """Validate a GenerateRequest against the loaded model's vocabulary and context length."""
    prompt, chat, ids = _input_from_proto(req, vocab_size, max_model_len)
    constraint = constraint_from_proto(req, chat.plan if chat is not None else None)
    logprobs: int | None = None
    if req.output.HasField("logprobs"):
        if not 0 <= req.output.logprobs <= MAX_LOGPROBS:
            raise InvalidArgument(f"logprobs must be between 0 and {MAX_LOGPROBS}, got {req.output.logprobs}")
        logprobs = req.output.logprobs
    return GenerationParams(
        request_id=check_name("request_id", req.request_id) or uuid.uuid4().hex,
        prompt=prompt,
        chat=chat,
        prompt_token_ids=ids,
        logprobs=logprobs,
        return_token_ids=req.output.return_token_ids,
        constraint=constraint,
        **_sampling_from_proto(req.sampling, vocab_size),
        **_stopping_from_proto(req.stopping, vocab_size, max_model_len),
    )


def tokenize_from_proto(req: pb.TokenizeRequest, max_model_len: int = 0) -> TokenizeParams:
    """``max_model_len``: the loaded model's; text much longer than it could ever fit is
    refused before it is tokenized (0: no bound)."""
    which = req.WhichOneof("input")
    if which == "text":
        if not req.text:
            raise InvalidArgument("text is empty")
        check_text_fits("text", len(req.text), max_model_len)
        chat = None
    elif which == "chat":
        check_text_fits("chat", chat_chars(req.chat), max_model_len)
        chat = chat_from_proto(req.chat)
    else:
        raise InvalidArgument("no input: set text or chat")
    # Unset means "as Generate would": text gets BOS, a chat gets what its template renders.
    add_special = req.add_special_tokens if req.HasField("add_special_tokens") else True
    return TokenizeParams(
        text=req.text if chat is None else None,
        chat=chat,
        add_special_tokens=add_special,
        return_pieces=req.return_pieces,
    )


def embed_from_proto(req: pb.EmbedRequest, vocab_size: int, max_model_len: int) -> EmbedParams:
    """Validate an EmbedRequest: 1 to MAX_EMBED_INPUTS non-empty inputs, token ids in the
    vocabulary and within the context (a text's length is the engine's to check)."""
    if not req.inputs:
        raise InvalidArgument("inputs is empty")
    if len(req.inputs) > MAX_EMBED_INPUTS:
        raise InvalidArgument(f"at most {MAX_EMBED_INPUTS} inputs, got {len(req.inputs)}")
    inputs: list[str | list[int]] = []
    for i, item in enumerate(req.inputs):
        which = item.WhichOneof("input")
        if which == "text" and item.text:
            check_text_fits(f"inputs[{i}]", len(item.text), max_model_len)
            inputs.append(item.text)
        elif which == "tokens" and item.tokens.ids:
            ids = list(item.tokens.ids)
            _check_token_ids(f"inputs[{i}]", ids, vocab_size)
            if len(ids) > max_model_len:
                raise InvalidArgument(f"inputs[{i}] has {len(ids)} tokens, over the model's {max_model_len}")
            inputs.append(ids)
        else:
            raise InvalidArgument(f"inputs[{i}] is empty")
    return EmbedParams(request_id=check_name("request_id", req.request_id) or uuid.uuid4().hex, inputs=inputs)
