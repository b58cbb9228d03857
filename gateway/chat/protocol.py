"""The request body of POST /v1/chat/completions and its Generate request; the chat's parts
(messages, tools, response_format) are in ``gateway.chat.messages``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from gateway.chat.messages import (
    AllowedToolsChoice,
    ChatMessage,
    NamedToolChoice,
    ResponseFormat,
    ToolChoice,
    ToolDef,
    chat_input,
)
from gateway.fields import Int32, ranged
from gateway.generation.protocol import GenerationFields
from gateway.openai_fields import CHAT_FIELDS
from switchyard.contract import MAX_LOGPROBS
from switchyard.v1 import inference_pb2 as pb


class ChatCompletionRequest(GenerationFields):
    """POST /v1/chat/completions: rendered by the engine with the model's own template."""

    openai_fields = CHAT_FIELDS

    messages: list[ChatMessage]
    max_completion_tokens: Int32 | None = ranged(None, "tokens to generate at most", minimum=1)
    logprobs: bool = False
    top_logprobs: Int32 | None = ranged(None, "most likely alternatives per token", minimum=0, maximum=MAX_LOGPROBS)
    tools: list[ToolDef] | None = Field(None, max_length=128)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    chat_template_kwargs: dict[str, Any] | None = Field(
        None, description="more variables for the model's chat template, e.g. enable_thinking (vLLM's extension)"
    )
    add_generation_prompt: bool = True
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = Field(
        None,
        description="how much a reasoning model thinks (its template's switch: Qwen3 enable_thinking, gpt-oss levels)",
    )
    include_reasoning: bool = Field(
        True, description="return the reasoning (vLLM's extension); it is counted either way"
    )

    @property
    def forces_calls(self) -> bool:
        """Whether the answer is tool calls by construction (required, or a named function)."""
        choice = self.tool_choice
        mode = choice.allowed_tools.mode if isinstance(choice, AllowedToolsChoice) else choice
        return bool(self.tools) and (mode == "required" or isinstance(choice, NamedToolChoice))

    def inputs(self) -> list[pb.GenerateRequest]:
        top = (self.top_logprobs or 0) if self.logprobs else None
        request = self._request(self.max_completion_tokens or self.max_tokens, top)
        request.chat.CopyFrom(
            chat_input(
                self.messages,
                self.add_generation_prompt,
                self.tools,
                self.tool_choice,
                self.parallel_tool_calls,
                self.chat_template_kwargs,
            )
        )
        request.chat.reasoning_effort = self.reasoning_effort or ""
        request.chat.include_reasoning = self.include_reasoning
        response_format = self.response_format.to_proto() if self.response_format is not None else None
        if response_format is not None:
            request.response_format.CopyFrom(response_format)
        return [request]
