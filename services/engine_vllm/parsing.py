"""Reasoning and tool calls out of a vLLM model's output, by vLLM's own parsers.

vLLM ships maintained parsers for dozens of model families (``vllm.parser.ParserManager``
composes a tool-call parser and a reasoning parser into one streaming ``Parser``); its server
picks them by flag. Here a load names them (``tool_parser``, ``reasoning_parser``) or leaves
them to ``auto``: vLLM has no detection of its own, so ``auto`` reads the markers the model's
chat template teaches (the table below, from the parsers' own markers). One parser object per
request, fed each output delta (text and token ids) as vLLM's server feeds it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
from vllm.parser.parser_manager import ParserManager
from vllm.reasoning import ReasoningParserManager
from vllm.tool_parsers import ToolParserManager

from switchyard.engine.params import ChatParams, openai_messages
from switchyard.engine.tool_calls import new_call_id
from switchyard.errors import FailedPrecondition, InvalidArgument
from switchyard.v1 import control_pb2, inference_pb2

logger = logging.getLogger(__name__)

# (markers the template must all hold, tool parser, reasoning parser); the first match wins.
# A reasoning parser of None here means "qwen3 when the template has <think>".
THINK = "<think>"
TEMPLATE_FORMATS: tuple[tuple[tuple[str, ...], str | None, str | None], ...] = (
    (("<seed:tool_call>",), "seed_oss", "seed_oss"),
    (("<minimax:tool_call>",), "minimax_m2", "minimax_m2"),
    (("<tool_call>", "<function=", "<parameter="), "qwen3_xml", None),
    (("<tool_call>",), "hermes", None),
    (("[TOOL_CALLS]",), "mistral", None),
    (("<|python_start|>",), "llama4_pythonic", None),
    (("<|python_tag|>",), "llama3_json", None),
    (("<|start_header_id|>", "ipython"), "llama3_json", None),
    (("<\uff5ctool\u2581calls\u2581begin\uff5c>",), "deepseek_v3", "deepseek_r1"),  # DeepSeek V3, R1
    (("<|tool_calls_section_begin|>",), "kimi_k2", "kimi_k2"),
    (("<|tool_call_start|>",), "lfm2", None),
)


def from_template(template: str) -> tuple[str | None, str | None]:
    """The (tool parser, reasoning parser) a chat template's markers point at."""
    for markers, tools, reasoning in TEMPLATE_FORMATS:
        if all(marker in template for marker in markers):
            if reasoning is None and THINK in template:
                reasoning = "qwen3"
            return tools, reasoning
    return None, "qwen3" if THINK in template else None


def check_names(request: control_pb2.LoadModelRequest) -> None:
    """A load's parser names, if given, are ones vLLM has (checked before the load starts)."""
    for field, known in (
        ("tool_parser", ToolParserManager.list_registered()),
        ("reasoning_parser", ReasoningParserManager.list_registered()),
    ):
        name = getattr(request, field)
        if name not in ("", "auto", "none", *known):
            raise InvalidArgument(f"{field} {name[:40]!r} is not one of vLLM's: auto, none, {', '.join(known)}")


@dataclass
class ChatParsing:
    """The parsers chosen for one model, and what each request's parser is made from."""

    parser_cls: Any
    tokenizer: Any
    model_config: Any
    tool_parser: str
    reasoning_parser: str

    @classmethod
    def for_model(cls, tokenizer: Any, model_config: Any, request: control_pb2.LoadModelRequest) -> ChatParsing | None:
        """The parsers a load asked for (or that its template points at); None when none."""
        auto_tools, auto_reasoning = from_template(str(getattr(tokenizer, "chat_template", None) or ""))
        tools = _chosen(request.tool_parser, auto_tools)
        reasoning = _chosen(request.reasoning_parser, auto_reasoning)
        try:
            parser_cls = ParserManager.get_parser(tools, reasoning, enable_auto_tools=True, tokenizer=tokenizer)
        except Exception as exc:  # vLLM's parsers refuse a tokenizer in many ways
            if request.tool_parser not in ("", "auto") or request.reasoning_parser not in ("", "auto"):
                raise FailedPrecondition(f"vLLM's parsers {tools}/{reasoning} refuse this model: {exc}") from exc
            logger.warning("the parsers the template points at (%s, %s) refuse the model: %s", tools, reasoning, exc)
            return None
        if parser_cls is None:
            return None
        return cls(parser_cls, tokenizer, model_config, tools or "", reasoning or "")

    def start(self, chat: ChatParams) -> RequestParsing:
        request = ChatCompletionRequest(
            model="switchyard",
            messages=openai_messages(chat.messages),
            tools=chat.tools or None,
            tool_choice="auto" if chat.plan.mode == "auto" and chat.functions else "none",
            parallel_tool_calls=chat.plan.parallel,
            chat_template_kwargs=chat.template_kwargs or None,
            include_reasoning=chat.include_reasoning,
            stream=True,
        )
        parser = self.parser_cls(
            self.tokenizer,
            request.tools,
            chat_template_kwargs=chat.template_kwargs,
            model_config=self.model_config,
        )
        request = parser.adjust_request(request)
        return RequestParsing(parser, request, chat.include_reasoning)


def _chosen(asked: str, auto: str | None) -> str | None:
    if asked in ("", "auto"):
        return auto
    return None if asked == "none" else asked


class RequestParsing:
    """One request's parser: vLLM's output deltas in, the contract's deltas out."""

    def __init__(self, parser: Any, request: ChatCompletionRequest, include_reasoning: bool) -> None:
        self.parser = parser
        self.request = request
        self.include_reasoning = include_reasoning
        self.skip_special_tokens = bool(request.skip_special_tokens)  # markers must reach the parser
        self._ids: dict[int, str] = {}
        self.called = False

    def delta(self, text: str, token_ids: list[int], prompt_ids: list[int], finished: bool) -> inference_pb2.Delta:
        parsed = self.parser.parse_delta(text, token_ids, self.request, prompt_token_ids=prompt_ids, finished=finished)
        delta = inference_pb2.Delta()
        if parsed is None:
            return delta
        delta.text = parsed.content or ""
        if parsed.reasoning and self.include_reasoning:
            delta.reasoning = parsed.reasoning
        for call in parsed.tool_calls or ():
            function = call.function
            piece = delta.tool_calls.add(index=call.index, arguments=(function.arguments if function else None) or "")
            if call.index not in self._ids:
                self._ids[call.index] = new_call_id()
                piece.id, piece.name = self._ids[call.index], (function.name if function else None) or ""
            self.called = True
        return delta

    def reasoning_tokens(self, output_ids: list[int]) -> int:
        return int(self.parser.count_reasoning_tokens(output_ids))
