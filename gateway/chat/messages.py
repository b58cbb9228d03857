"""The chat request's parts: messages (with tool calls), tools, tool_choice, response_format,
and their conversion to the contract. Shapes only; values are checked by the engines."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from google.protobuf.struct_pb2 import Struct
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from gateway.errors import ApiError
from switchyard.contract import CHAT_ROLES
from switchyard.v1 import inference_pb2 as pb

TEXT_PARTS = ("text", "input_text")


class CallFunction(BaseModel):
    name: str
    arguments: str = Field("{}", description="the arguments, a JSON object as text")


class ToolCall(BaseModel):
    """A call the assistant made, in the history."""

    id: str = ""
    type: Literal["function"] = "function"
    function: CallFunction


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(CHAT_ROLES)})]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[ToolCall] | None = None
    # An assistant turn's reasoning, given back: llama-server's and DeepSeek's name, and vLLM's.
    reasoning_content: str | None = None
    reasoning: str | None = None

    def text(self, index: int) -> str:
        """Content as text; a part that is not text (an image, audio, a file) is refused."""
        if not isinstance(self.content, list):
            return self.content or ""
        for j, part in enumerate(self.content):
            kind = part.get("type")
            if kind not in TEXT_PARTS:
                raise ApiError(
                    400,
                    f"content part type {kind!r} is not supported: no model served here takes images, audio or files",
                    f"messages.{index}.content.{j}.type",
                )
        return "".join(str(part.get("text", "")) for part in self.content)


class FunctionDef(BaseModel):
    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDef(BaseModel):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(BaseModel):
    name: str


class NamedToolChoice(BaseModel):
    type: Literal["function"]
    function: NamedFunction


class AllowedTool(BaseModel):
    type: Literal["function"]
    function: NamedFunction


class AllowedTools(BaseModel):
    mode: Literal["auto", "required"]
    tools: list[AllowedTool] = Field(max_length=128)


class AllowedToolsChoice(BaseModel):
    """OpenAI's ``{"type": "allowed_tools", ...}``: the model may call only these of the tools."""

    type: Literal["allowed_tools"]
    allowed_tools: AllowedTools


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice | AllowedToolsChoice


def allowed(
    tools: list[ToolDef] | None, choice: ToolChoice | None
) -> tuple[list[ToolDef] | None, Literal["none", "auto", "required"] | NamedToolChoice | None]:
    """An allowed_tools choice as what the contract says: the tools it allows, and its mode."""
    if not isinstance(choice, AllowedToolsChoice):
        return tools, choice
    names = [tool.function.name for tool in choice.allowed_tools.tools]
    known = {tool.function.name for tool in tools or []}
    missing = [name for name in names if name not in known]
    if missing:
        raise ApiError(400, f"allowed_tools names {missing[0]!r}, which is not among the tools", "tool_choice")
    return [tool for tool in tools or [] if tool.function.name in names], choice.allowed_tools.mode


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    def to_proto(self) -> pb.ResponseFormat | None:
        if self.type == "text":
            return None
        if self.type == "json_object":
            return pb.ResponseFormat(json_object=True)
        if self.json_schema is None or self.json_schema.schema_ is None:
            raise ApiError(400, "response_format json_schema needs json_schema.schema", "response_format.json_schema")
        schema = pb.JsonSchema(
            name=self.json_schema.name,
            schema_json=json.dumps(self.json_schema.schema_),
            strict=bool(self.json_schema.strict),
        )
        return pb.ResponseFormat(json_schema=schema)


TOOL_MODES = {
    "none": pb.TOOL_CHOICE_MODE_NONE,
    "auto": pb.TOOL_CHOICE_MODE_AUTO,
    "required": pb.TOOL_CHOICE_MODE_REQUIRED,
}


def chat_input(
    messages: list[ChatMessage],
    add_prompt: bool,
    tools: list[ToolDef] | None = None,
    tool_choice: ToolChoice | None = None,
    parallel_tool_calls: bool | None = None,
    template_kwargs: dict[str, Any] | None = None,
) -> pb.ChatInput:
    chat = pb.ChatInput(add_generation_prompt=add_prompt)
    tools, tool_choice = allowed(tools, tool_choice)
    for i, message in enumerate(messages):
        chat.messages.append(
            pb.ChatMessage(
                role=message.role,
                content=message.text(i),
                name=message.name or "",
                tool_call_id=message.tool_call_id or "",
                tool_calls=[
                    pb.ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
                    for c in message.tool_calls or []
                ],
                reasoning_content=message.reasoning_content or message.reasoning or "",
            )
        )
    for tool in tools or []:
        function = tool.function
        chat.functions.append(
            pb.Tool(
                name=function.name,
                description=function.description,
                parameters_json=json.dumps(function.parameters) if function.parameters is not None else "",
                strict=bool(function.strict),
            )
        )
    if isinstance(tool_choice, NamedToolChoice):
        chat.tool_choice.function = tool_choice.function.name
    elif tool_choice is not None:
        chat.tool_choice.mode = TOOL_MODES[tool_choice]
    if parallel_tool_calls is not None:
        chat.parallel_tool_calls = parallel_tool_calls
    if template_kwargs:
        kwargs = Struct()
        kwargs.update(template_kwargs)
        chat.template_kwargs.CopyFrom(kwargs)
    return chat
