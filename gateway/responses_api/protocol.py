"""The request body of POST /v1/responses: shapes only. Its input items, tools and tool_choice
become the chat's parts (``gateway.responses_api.translate``), so the contract sees a chat like
any other; values are checked by the engines."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from gateway.fields import EngineName, Int32, Int64, OpenAIBody, ranged
from gateway.openai_fields import RESPONSES_FIELDS

MAX_ITEMS = 4096  # input items of one request


def _type_of(value: Any) -> Any:
    return value.get("type", "message") if isinstance(value, dict) else getattr(value, "type", "message")


def _item_kind(value: Any) -> str:
    """The tag of an input item: its ``type`` (a message may omit it), ``other`` for a type
    switchyard does not take, which is refused naming it."""
    kind = _type_of(value)
    return kind if kind in ("message", "function_call", "function_call_output", "reasoning") else "other"


def _tool_kind(value: Any) -> str:
    return "function" if _type_of(value) == "function" else "other"


class Part(BaseModel):
    """A content part: text (``input_text``, ``output_text``), a refusal; any other type (an
    image, a file, audio) is refused naming it."""

    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None
    refusal: str | None = None


class MessageItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[Part]


class FunctionCallItem(BaseModel):
    """A call the model made, given back."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str


class FunctionCallOutputItem(BaseModel):
    """The result of a call, for the model."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["function_call_output"]
    call_id: str
    output: str | list[Part]


class ReasoningText(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str = "reasoning_text"
    text: str


class ReasoningItem(BaseModel):
    """Reasoning the model did, given back (its text in ``content``, or in ``encrypted_content``,
    where switchyard puts it for clients that ask with ``include``)."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["reasoning"]
    summary: list[ReasoningText] = Field(default_factory=list)
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None


class OtherItem(BaseModel):
    """An item of a type switchyard does not take (a built-in tool's call, an item reference)."""

    model_config = ConfigDict(extra="ignore")

    type: str


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[ReasoningItem, Tag("reasoning")]
    | Annotated[OtherItem, Tag("other")],
    Discriminator(_item_kind),
]


class FunctionTool(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["function"]
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class OtherTool(BaseModel):
    """A built-in tool (web search, file search, code interpreter...): refused naming it."""

    model_config = ConfigDict(extra="ignore")

    type: str


Tool = Annotated[
    Annotated[FunctionTool, Tag("function")] | Annotated[OtherTool, Tag("other")],
    Discriminator(_tool_kind),
]


class FunctionChoice(BaseModel):
    type: Literal["function"]
    name: str


class AllowedFunction(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["function"]
    name: str


class AllowedChoice(BaseModel):
    type: Literal["allowed_tools"]
    mode: Literal["auto", "required"]
    tools: list[AllowedFunction] = Field(max_length=128)


ToolChoice = Literal["none", "auto", "required"] | FunctionChoice | AllowedChoice


class TextFormat(BaseModel):
    """``text.format``: text, any JSON object, or JSON following a schema."""

    model_config = ConfigDict(populate_by_name=True)

    type: Literal["text", "json_object", "json_schema"]
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class TextConfig(BaseModel):
    format: TextFormat | None = None
    verbosity: Literal["medium"] | None = Field(None, description="only the default: verbosity is not supported")


class ReasoningConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = Field(
        None, description="xhigh and max are high, the contract's most"
    )
    summary: Literal["auto", "concise", "detailed"] | None = Field(
        None, description="accepted; no summary is made: the reasoning is returned whole as reasoning_text"
    )
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class StreamOptions(BaseModel):
    include_obfuscation: bool | None = Field(None, description="no effect: switchyard adds no obfuscation")


# What ``include`` may ask for: the reasoning given back by the client (switchyard writes it in
# the clear, as the text it is).
INCLUDABLE = ("reasoning.encrypted_content",)


class ResponsesRequest(OpenAIBody):
    """POST /v1/responses: OpenAI's Responses request (+ engine), over a chat."""

    openai_fields = RESPONSES_FIELDS

    model: str | None = None
    engine: EngineName | None = None
    input: str | Annotated[list[InputItem], Field(max_length=MAX_ITEMS)] = Field(
        description=f"a user message, or at most {MAX_ITEMS} items"
    )
    instructions: str | None = Field(None, description="a system message first (not carried to follow-ups)")
    max_output_tokens: Int32 | None = ranged(None, "tokens to generate at most", minimum=1)
    temperature: float | None = ranged(None, "0 is greedy", minimum=0, maximum=2)
    top_p: float | None = ranged(None, "nucleus sampling", exclusiveMinimum=0, maximum=1)
    tools: list[Tool] | None = Field(None, max_length=128)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    previous_response_id: str | None = Field(None, description="continue from a stored response (this gateway's)")
    store: bool = Field(True, description="keep the response for GET and previous_response_id (bounded store)")
    stream: bool = False
    stream_options: StreamOptions | None = None
    include: list[Literal["reasoning.encrypted_content"]] | None = None
    truncation: Literal["disabled"] | None = Field(None, description="only disabled: input is never truncated")
    metadata: dict[str, str] | None = None
    # switchyard's extras, as on the other routes
    top_k: Int32 | None = ranged(None, "0 or -1: off", minimum=-1)
    seed: Int64 | None = None
    ignore_eos: bool = False
