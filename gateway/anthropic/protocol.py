"""The request bodies of POST /v1/messages and /v1/messages/count_tokens (Anthropic's Messages
API): shapes only; ``gateway.anthropic.translate`` makes them a chat."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from gateway.fields import EngineName, Int32, Int64, OpenAIBody, ranged
from gateway.openai_fields import ANTHROPIC_REFUSED

BLOCKS = ("text", "tool_use", "tool_result", "thinking")


def _block_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in BLOCKS else "other"


def _tool_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "custom" if kind in (None, "custom") else "other"


class TextBlock(BaseModel):
    model_config = ConfigDict(extra="ignore")  # cache_control, citations: no effect here

    type: Literal["text"]
    text: str


class ToolUseBlock(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class ResultPart(BaseModel):
    """A part of a tool result: text; anything else (an image, a document) is refused."""

    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None


class ToolResultBlock(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[ResultPart] | None = None
    is_error: bool | None = Field(None, description="the result is given to the model as 'Error: ' and the content")


class ThinkingBlock(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["thinking"]
    thinking: str
    signature: str | None = None


class OtherBlock(BaseModel):
    """A block switchyard does not take (an image, a document, redacted thinking, a server
    tool's): refused naming it."""

    model_config = ConfigDict(extra="ignore")

    type: str


Block = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ToolUseBlock, Tag("tool_use")]
    | Annotated[ToolResultBlock, Tag("tool_result")]
    | Annotated[ThinkingBlock, Tag("thinking")]
    | Annotated[OtherBlock, Tag("other")],
    Discriminator(_block_kind),
]


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["user", "assistant"]
    content: str | list[Block]


class CustomTool(BaseModel):
    model_config = ConfigDict(extra="ignore")  # cache_control, input_examples...: no effect here

    type: Literal["custom"] | None = None
    name: str
    description: str | None = None
    input_schema: dict[str, Any]
    strict: bool | None = None


class ServerTool(BaseModel):
    """One of Anthropic's server tools (web search, bash, code execution...): refused naming it."""

    model_config = ConfigDict(extra="ignore")

    type: str


Tool = Annotated[
    Annotated[CustomTool, Tag("custom")] | Annotated[ServerTool, Tag("other")],
    Discriminator(_tool_kind),
]


class ToolChoice(BaseModel):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Thinking(BaseModel):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: Int32 | None = Field(
        None, ge=1, description="as a reasoning effort: under 4096 low, under 16384 medium, else high"
    )
    display: Literal["summarized", "omitted"] | None = Field(
        None, description="omitted: no thinking blocks (the reasoning is generated and counted)"
    )


class JsonFormat(BaseModel):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(BaseModel):
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = Field(None, description="xhigh and max: high")
    format: JsonFormat | None = None


class SystemBlock(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: str


class ChatFields(OpenAIBody):
    """What /v1/messages and its count_tokens share: the conversation, tools and thinking."""

    openai_fields = ANTHROPIC_REFUSED

    model: str | None = None
    engine: EngineName | None = None
    messages: list[Message]
    system: str | list[SystemBlock] | None = None
    tools: list[Tool] | None = Field(None, max_length=128)
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    output_config: OutputConfig | None = None
    # No effect here by their nature: cache hints (prompt prefixes are cached anyway), ids.
    cache_control: Any = None
    workspace_id: Any = None
    user_profile_id: Any = None
    inference_geo: Any = None


class MessagesRequest(ChatFields):
    """POST /v1/messages: Anthropic's request (+ engine, and switchyard's extras)."""

    max_tokens: Int32 = ranged(..., "tokens to generate at most", minimum=1)
    stop_sequences: list[str] | None = None
    temperature: float | None = ranged(None, "0 is greedy", minimum=0, maximum=2)
    top_p: float | None = ranged(None, "nucleus sampling", exclusiveMinimum=0, maximum=1)
    top_k: Int32 | None = ranged(None, "0 or -1: off", minimum=-1)
    stream: bool = False
    metadata: dict[str, Any] | None = None  # no effect: the caller's own records
    service_tier: str | None = None  # no effect
    seed: Int64 | None = None
    ignore_eos: bool = False


class CountTokensRequest(ChatFields):
    """POST /v1/messages/count_tokens: the tokens of the prompt /v1/messages would render."""
