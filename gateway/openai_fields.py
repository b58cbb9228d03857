"""What switchyard does with each field of OpenAI's request bodies: never a 200 for a field it
drops. A field it implements is declared on the request model; one whose absence of effect is
its nature (an end-user id, metadata) is accepted; any other field OpenAI defines is refused
with a 400 naming it; a field outside OpenAI's API (a vendor extra) is accepted and logged
once as ignored, as vLLM does, so clients that send extras keep working, unless it is another
server's extra that changes what is generated (refused too).

The README's table of fields is this module's sets.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from gateway.errors import ApiError

logger = logging.getLogger(__name__)

# OpenAI's request fields (the API reference of 2026).
CHAT_FIELDS = frozenset(
    {
        "messages", "model", "audio", "frequency_penalty", "function_call", "functions", "logit_bias",
        "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls",
        "prediction", "presence_penalty", "prompt_cache_key", "prompt_cache_retention", "reasoning_effort",
        "response_format", "safety_identifier", "seed", "service_tier", "stop", "store", "stream",
        "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity",
        "web_search_options",
    }
)  # fmt: skip
COMPLETION_FIELDS = frozenset(
    {
        "model", "prompt", "best_of", "echo", "frequency_penalty", "logit_bias", "logprobs", "max_tokens", "n",
        "presence_penalty", "seed", "stop", "stream", "stream_options", "suffix", "temperature", "top_p", "user",
    }
)  # fmt: skip
EMBEDDING_FIELDS = frozenset({"input", "model", "dimensions", "encoding_format", "user"})
RESPONSES_FIELDS = frozenset(
    {
        "access_programs", "background", "background_options", "context_management", "conversation", "image",
        "include", "input", "instructions", "max_output_tokens", "max_tool_calls", "metadata", "model",
        "moderation", "parallel_tool_calls", "previous_response_id", "prompt", "prompt_cache_key",
        "prompt_cache_options", "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier", "store",
        "stream", "stream_options", "temperature", "text", "tool_choice", "tools", "top_logprobs", "top_p",
        "truncation", "user",
    }
)  # fmt: skip
# Anthropic's request fields (its Messages API) that switchyard does not honour.
ANTHROPIC_REFUSED = frozenset(
    {"container", "mcp_servers", "context_management", "speed", "diagnostics", "output_format"}
)
# Accepted, and without effect by their nature: ids and labels for the caller's own records,
# and cache hints (both engines reuse cached prompt prefixes on their own).
NO_EFFECT = frozenset(
    {
        "user", "metadata", "prompt_cache_key", "prompt_cache_retention", "prompt_cache_options",
        "safety_identifier", "service_tier",
    }
)  # fmt: skip
# Accepted with these values only (what they mean is what switchyard does anyway).
ONLY = {"store": (False, None), "modalities": (["text"], None), "background": (False, None)}
WHY = {
    "audio": "audio output is not supported",
    "modalities": "only text output is supported",
    "store": "switchyard does not store completions",
    "functions": "use tools",
    "function_call": "use tool_choice",
    "prediction": "predicted outputs are not supported",
    "verbosity": "verbosity is not supported",
    "web_search_options": "web search is not supported",
    "suffix": "neither engine implements insertion (suffix)",
    "dimensions": "the embedding size is the model's own",
    "background": "background mode is not supported: a response runs while its request is open",
    "conversation": "conversations are not stored; use previous_response_id",
    "prompt": "stored prompt templates are not supported; send instructions and input",
    "max_tool_calls": "max_tool_calls limits built-in tools, which are not supported",
    "top_logprobs": "logprobs are not supported on /v1/responses; use /v1/chat/completions",
    "context_management": "context management (compaction) is not supported",
    "image": "image generation is not supported",
    "moderation": "moderation is not supported",
    "access_programs": "programmatic tool calling is not supported",
    "background_options": "background mode is not supported",
    "container": "code execution containers are not supported",
    "mcp_servers": "MCP servers are not supported: give the tools as tools",
    "speed": "speed modes are not supported",
    "diagnostics": "diagnostics are not supported",
    "output_format": "use output_config.format",
}
# Other servers' extras (vLLM's, llama-server's) that change what is generated: a client
# sending one expects its effect, so it is refused like an OpenAI field, with the way to get it.
VENDOR_REFUSED = {
    "guided_json": "use response_format json_schema",
    "guided_regex": "regular-expression constraints are not supported; use response_format json_schema",
    "guided_choice": "use response_format json_schema with an enum",
    "guided_grammar": "grammar constraints are not supported; use response_format json_schema",
    "guided_decoding_backend": "the constraint backend is the engine's own",
    "structured_outputs": "use response_format",
    "grammar": "grammar constraints are not supported; use response_format json_schema",
    "json_schema": "use response_format json_schema",
    "use_beam_search": "beam search is not supported",
    "length_penalty": "beam search is not supported",
    "prompt_logprobs": "prompt logprobs are not supported",
    "allowed_token_ids": "use logit_bias",
    "bad_words": "use logit_bias",
    "truncate_prompt_tokens": "prompts are never truncated; long ones get a 400",
    "typical_p": "typical sampling is not supported",
    "mirostat": "mirostat sampling is not supported",
    "continue_final_message": "continuing the last assistant turn is not supported; use /v1/completions",
}
MAX_LOGGED = 256
_logged: set[str] = set()


def check_extras(extras: Mapping[str, Any] | None, openai_fields: frozenset[str]) -> None:
    """Refuse OpenAI fields switchyard does not honour; log vendor extras once each."""
    for name, value in (extras or {}).items():
        if name in NO_EFFECT:
            continue
        if name in ONLY and value in ONLY[name]:
            continue
        if name in openai_fields:
            raise ApiError(400, f"{name}: {WHY.get(name, 'not supported by switchyard')}", name)
        if name in VENDOR_REFUSED:
            raise ApiError(400, f"{name}: {VENDOR_REFUSED[name]}", name)
        if name not in _logged and len(_logged) < MAX_LOGGED:
            _logged.add(name)
            logger.warning("ignoring request field %r: it is not part of the OpenAI API", name[:64])
