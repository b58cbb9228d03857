"""An Anthropic Messages request as the contract's chat: named pure functions, tested without
an engine.

``system`` is a system message; a user turn's ``tool_result`` blocks are tool messages (before
its text), an assistant turn's ``tool_use`` blocks its tool calls and its ``thinking`` its
reasoning. Tools are function tools (``input_schema`` their parameters); tool_choice ``any`` is
required, ``tool`` a named function; ``thinking`` and ``output_config.effort`` set the reasoning
effort, ``output_config.format`` the response format. Anything else is refused naming it.
"""

from __future__ import annotations

import json

from gateway.anthropic.protocol import (
    ChatFields,
    CountTokensRequest,
    CustomTool,
    Message,
    MessagesRequest,
    OtherBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from gateway.chat.messages import (
    CallFunction,
    ChatMessage,
    FunctionDef,
    JsonSchemaFormat,
    NamedFunction,
    NamedToolChoice,
    ResponseFormat,
    ToolCall,
    ToolChoice,
    ToolDef,
    chat_input,
)
from gateway.errors import ApiError
from gateway.fields import engine_kind
from gateway.generation.protocol import generate_request
from switchyard.v1 import inference_pb2 as pb

CHOICES: dict[str, ToolChoice] = {"auto": "auto", "any": "required", "none": "none"}
EFFORTS = {"xhigh": "high", "max": "high"}
BUDGETS = ((4096, "low"), (16384, "medium"))  # thinking budget_tokens under each bound -> effort


def _result_text(block: ToolResultBlock, where: str) -> str:
    content = block.content
    if isinstance(content, list):
        for j, part in enumerate(content):
            if part.type != "text":
                raise ApiError(400, f"{where}.content.{j}.type: tool result parts other than text are not supported")
        content = "".join(part.text or "" for part in content)
    text = content or ""
    return f"Error: {text}" if block.is_error else text


def _turn(message: Message, i: int) -> list[ChatMessage]:
    """One Anthropic turn as chat messages: a user turn's tool results first, then its text."""
    if isinstance(message.content, str):
        return [ChatMessage(role=message.role, content=message.content)]
    texts: list[str] = []
    results: list[ChatMessage] = []
    calls: list[ToolCall] = []
    reasoning = ""
    for j, block in enumerate(message.content):
        where = f"messages.{i}.content.{j}"
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, OtherBlock):
            raise ApiError(400, f"{where}.type: content block type {block.type!r} is not supported")
        elif message.role == "user" and isinstance(block, ToolResultBlock):
            results.append(ChatMessage(role="tool", tool_call_id=block.tool_use_id, content=_result_text(block, where)))
        elif message.role == "assistant" and isinstance(block, ToolUseBlock):
            arguments = json.dumps(block.input, ensure_ascii=False)
            calls.append(ToolCall(id=block.id, function=CallFunction(name=block.name, arguments=arguments)))
        elif message.role == "assistant" and isinstance(block, ThinkingBlock):
            reasoning += block.thinking
        else:
            raise ApiError(400, f"{where}.type: a {block.type} block cannot be in a {message.role} message")
    text = "".join(texts)
    if message.role == "user":
        return [*results, *([ChatMessage(role="user", content=text)] if texts or not results else [])]
    turn = ChatMessage(role="assistant", content=text or None, tool_calls=calls or None, reasoning_content=reasoning)
    return [turn]


def chat_messages(body: ChatFields) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    if body.system is not None:
        system = body.system if isinstance(body.system, str) else "".join(b.text for b in body.system)
        messages.append(ChatMessage(role="system", content=system))
    for i, message in enumerate(body.messages):
        messages.extend(_turn(message, i))
    return messages


def tool_defs(body: ChatFields) -> list[ToolDef] | None:
    if body.tools is None:
        return None
    tools = []
    for i, tool in enumerate(body.tools):
        if not isinstance(tool, CustomTool):
            raise ApiError(400, f"tools.{i}.type: tool type {tool.type!r} is not supported: only custom tools")
        function = FunctionDef(
            name=tool.name, description=tool.description or "", parameters=tool.input_schema, strict=tool.strict
        )
        tools.append(ToolDef(type="function", function=function))
    return tools


def tool_choice(body: ChatFields) -> tuple[ToolChoice | None, bool | None]:
    """The chat's tool_choice and parallel_tool_calls."""
    choice = body.tool_choice
    if choice is None:
        return None, None
    parallel = None if choice.disable_parallel_tool_use is None else not choice.disable_parallel_tool_use
    if choice.type == "tool":
        if not choice.name:
            raise ApiError(400, "tool_choice.name: a tool choice of type tool names the tool")
        return NamedToolChoice(type="function", function=NamedFunction(name=choice.name)), parallel
    return CHOICES[choice.type], parallel


def reasoning_effort(body: ChatFields) -> str:
    """The chat's reasoning effort: none when thinking is disabled; else output_config's effort,
    or the thinking budget's level; empty (the model's default) when neither says."""
    thinking, config = body.thinking, body.output_config
    if thinking is not None and thinking.type == "disabled":
        return "none"
    if config is not None and config.effort is not None:
        return EFFORTS.get(config.effort, config.effort)
    if thinking is not None and thinking.type == "enabled" and thinking.budget_tokens is not None:
        return next((effort for bound, effort in BUDGETS if thinking.budget_tokens < bound), "high")
    return ""


def to_chat(body: ChatFields) -> pb.ChatInput:
    choice, parallel = tool_choice(body)
    chat = chat_input(chat_messages(body), True, tool_defs(body), choice, parallel)
    chat.reasoning_effort = reasoning_effort(body)
    chat.include_reasoning = body.thinking is None or body.thinking.display != "omitted"
    return chat


def to_generate(body: MessagesRequest) -> pb.GenerateRequest:
    sampling = {"temperature": body.temperature, "top_p": body.top_p, "top_k": body.top_k, "seed": body.seed}
    request = generate_request(
        body.engine, body.model, body.max_tokens, sampling, body.stop_sequences, ignore_eos=body.ignore_eos
    )
    request.chat.CopyFrom(to_chat(body))
    fmt = body.output_config.format if body.output_config is not None else None
    if fmt is not None:
        schema = JsonSchemaFormat(name="output", schema=fmt.schema_)
        constraint = ResponseFormat(type="json_schema", json_schema=schema).to_proto()
        assert constraint is not None  # json_schema is never plain text
        request.response_format.CopyFrom(constraint)
    return request


def to_tokenize(body: CountTokensRequest) -> pb.TokenizeRequest:
    return pb.TokenizeRequest(engine=engine_kind(body.engine), model=body.model or "", chat=to_chat(body))
