"""A Responses request as the contract's chat: named pure functions, tested without an engine.

Input items become chat messages (a ``function_call`` joins the assistant turn before it, a
``function_call_output`` is a tool message, a ``reasoning`` item is the next assistant turn's
reasoning), tools and tool_choice become the chat's, ``text.format`` the response format and
``reasoning.effort`` the chat's reasoning effort (a forced call has no text: ``text.format`` then
waits for the next turn). Anything switchyard does not take is refused naming where it is,
never dropped.
"""

from __future__ import annotations

from gateway.chat.messages import (
    AllowedTool,
    AllowedTools,
    AllowedToolsChoice,
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
from gateway.generation.protocol import generate_request
from gateway.responses_api.protocol import (
    AllowedChoice,
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionChoice,
    FunctionTool,
    MessageItem,
    OtherItem,
    Part,
    ReasoningItem,
    ResponsesRequest,
)
from switchyard.v1 import inference_pb2 as pb

TEXT_PARTS = ("input_text", "output_text", "text", "refusal")
EFFORTS = {"xhigh": "high", "max": "high"}  # levels above the contract's highest


def part_text(content: str | list[Part], where: str) -> str:
    """Content as text; a part that is not text (an image, a file, audio) is refused."""
    if isinstance(content, str):
        return content
    for j, part in enumerate(content):
        if part.type not in TEXT_PARTS:
            raise ApiError(400, f"content part type {part.type!r} is not supported: only text", f"{where}.{j}.type")
    return "".join(part.text or part.refusal or "" for part in content)


def _reasoning_text(item: ReasoningItem) -> str:
    texts = [part.text for part in item.content or []]
    return "".join(texts) or item.encrypted_content or "".join(part.text for part in item.summary)


def input_messages(body: ResponsesRequest) -> list[ChatMessage]:
    """The request's input items as chat messages."""
    if isinstance(body.input, str):
        return [ChatMessage(role="user", content=body.input)]
    messages: list[ChatMessage] = []
    reasoning = ""  # given back before the assistant turn it belongs to
    for i, item in enumerate(body.input):
        if isinstance(item, ReasoningItem):
            reasoning += _reasoning_text(item)
            continue
        if isinstance(item, OtherItem):
            message = f"input item type {item.type!r} is not supported: only messages, function calls and their outputs"
            raise ApiError(400, message, f"input.{i}.type")
        if isinstance(item, FunctionCallOutputItem):
            text = part_text(item.output, f"input.{i}.output")
            messages.append(ChatMessage(role="tool", tool_call_id=item.call_id, content=text))
            continue
        last = messages[-1] if messages and messages[-1].role == "assistant" else None
        if isinstance(item, FunctionCallItem):
            call = ToolCall(id=item.call_id, function=CallFunction(name=item.name, arguments=item.arguments))
            if last is None:
                last = ChatMessage(role="assistant", content=None, tool_calls=[])
                messages.append(last)
            last.tool_calls = [*(last.tool_calls or []), call]
        elif isinstance(item, MessageItem):
            text = part_text(item.content, f"input.{i}.content")
            if item.role == "assistant" and last is not None and not last.tool_calls:
                last.content = str(last.content or "") + text
            else:
                last = ChatMessage(role=item.role, content=text)
                messages.append(last)
        if reasoning and last is not None and last.role == "assistant":
            last.reasoning_content, reasoning = (last.reasoning_content or "") + reasoning, ""
    return messages


def tool_defs(body: ResponsesRequest) -> list[ToolDef] | None:
    if body.tools is None:
        return None
    tools = []
    for i, tool in enumerate(body.tools):
        if not isinstance(tool, FunctionTool):
            raise ApiError(400, f"tool type {tool.type!r} is not supported: only function tools", f"tools.{i}.type")
        function = FunctionDef(
            name=tool.name, description=tool.description or "", parameters=tool.parameters, strict=tool.strict
        )
        tools.append(ToolDef(type="function", function=function))
    return tools


def chat_choice(body: ResponsesRequest) -> ToolChoice | None:
    choice = body.tool_choice
    if isinstance(choice, FunctionChoice):
        return NamedToolChoice(type="function", function=NamedFunction(name=choice.name))
    if isinstance(choice, AllowedChoice):
        named = [AllowedTool(type="function", function=NamedFunction(name=t.name)) for t in choice.tools]
        return AllowedToolsChoice(type="allowed_tools", allowed_tools=AllowedTools(mode=choice.mode, tools=named))
    return choice


def response_format(body: ResponsesRequest) -> pb.ResponseFormat | None:
    fmt = body.text.format if body.text is not None else None
    if fmt is None:
        return None
    if fmt.type == "json_schema" and fmt.schema_ is None:
        raise ApiError(400, "text.format json_schema needs a schema", "text.format.schema")
    schema = JsonSchemaFormat(name=fmt.name, description=fmt.description, schema=fmt.schema_, strict=fmt.strict)
    return ResponseFormat(type=fmt.type, json_schema=schema).to_proto()


def to_generate(body: ResponsesRequest, history: list[ChatMessage]) -> pb.GenerateRequest:
    """The Generate request: the instructions, then ``history`` (the stored conversation a
    previous_response_id continues, and this request's input)."""
    sampling = {"temperature": body.temperature, "top_p": body.top_p, "top_k": body.top_k, "seed": body.seed}
    request = generate_request(body.engine, body.model, body.max_output_tokens, sampling, ignore_eos=body.ignore_eos)
    system = [ChatMessage(role="system", content=body.instructions)] if body.instructions is not None else []
    chat = chat_input([*system, *history], True, tool_defs(body), chat_choice(body), body.parallel_tool_calls)
    request.chat.CopyFrom(chat)
    effort = body.reasoning.effort if body.reasoning is not None else None
    request.chat.reasoning_effort = EFFORTS.get(effort or "", effort or "")
    request.chat.include_reasoning = True
    fmt = response_format(body)
    if fmt is not None and not forces_calls(body):
        request.response_format.CopyFrom(fmt)
    return request


def forces_calls(body: ResponsesRequest) -> bool:
    """Whether the answer is tool calls by construction (required, a named function): then it
    has no text for text.format to shape, and the format is for the turns after (as the Agents
    SDK sends an output type with a forced first call)."""
    choice = body.tool_choice
    mode = choice.mode if isinstance(choice, AllowedChoice) else choice
    return bool(body.tools) and (mode == "required" or isinstance(choice, FunctionChoice))
