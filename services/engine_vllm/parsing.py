"""Reasoning and tool calls out of a vLLM model's output, by vLLM's own parsers.

vLLM ships maintained parsers for dozens of model families (``vllm.parser.ParserManager``
composes a tool-call parser and a reasoning parser into one streaming ``Parser``); its server
picks them by flag. Here a load names them (``tool_parser``, ``reasoning_parser``) or leaves
them to ``auto``: vLLM has no detection of its own, so ``auto`` reads the markers the model's
chat template teaches (the table below, from the parsers' own markers). One parser object per
request, fed each output delta (text and token ids) as vLLM's server feeds it.

gpt-oss speaks harmony, which vLLM reads off token ids with openai_harmony's own parser (its
gpt-oss tool and reasoning parsers only work inside it) and renders with harmony's renderer,
not the HF template: a model whose config says gpt_oss, or whose template uses ``<|channel|>``
over gpt-oss's vocabulary (o200k_harmony, where ``<|channel|>`` is id 200005), gets both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
from vllm.entrypoints.openai.parser.harmony_utils import (
    build_harmony_preamble,
    extract_instructions_from_messages,
    parse_chat_inputs_to_harmony_messages,
    render_for_completion,
)
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


HARMONY_CHANNEL_ID = 200005  # <|channel|> in o200k_harmony


def is_harmony(tokenizer: Any, model_config: Any) -> bool:
    """Whether a model speaks harmony over gpt-oss's vocabulary (see the module)."""
    if getattr(getattr(model_config, "hf_config", None), "model_type", "") == "gpt_oss":
        return True
    template = str(getattr(tokenizer, "chat_template", None) or "")
    return "<|channel|>" in template and tokenizer.convert_tokens_to_ids("<|channel|>") == HARMONY_CHANNEL_ID


@dataclass
class ChatParsing:
    """The parsers chosen for one model, and what each request's parser is made from."""

    parser_cls: Any
    tokenizer: Any
    model_config: Any
    tool_parser: str
    reasoning_parser: str
    harmony: bool = False  # rendered and read by vLLM's harmony path

    @classmethod
    def for_model(cls, tokenizer: Any, model_config: Any, request: control_pb2.LoadModelRequest) -> ChatParsing | None:
        """The parsers a load asked for (or that its template points at); None when none."""
        if is_harmony(tokenizer, model_config) and "none" not in (request.tool_parser, request.reasoning_parser):
            parser_cls = ParserManager.get_parser(
                "openai", "openai_gptoss", enable_auto_tools=True, is_harmony=True, tokenizer=tokenizer
            )
            return cls(parser_cls, tokenizer, model_config, "openai", "openai_gptoss", harmony=True)
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
        prompt = harmony_prompt(request, chat) if self.harmony else None
        return RequestParsing(parser, request, chat.include_reasoning, prompt)


def harmony_prompt(request: ChatCompletionRequest, chat: ChatParams) -> list[int]:
    """A chat as harmony renders it for gpt-oss: instructions, tools and reasoning effort in its
    system and developer messages, earlier turns as harmony messages (vLLM's own helpers)."""
    effort = chat.reasoning_effort or None
    if effort not in (None, "low", "medium", "high"):
        raise InvalidArgument(f"reasoning_effort {effort!r}: a gpt-oss model takes low, medium or high")
    instructions, messages = extract_instructions_from_messages(list(request.messages))
    preamble = build_harmony_preamble(
        instructions=instructions,
        tools=request.tools if chat.plan.mode == "auto" else None,
        reasoning_effort=effort,
        with_custom_tools=bool(request.tools),
    )
    return [int(t) for t in render_for_completion([*preamble, *parse_chat_inputs_to_harmony_messages(messages)])]


def _chosen(asked: str, auto: str | None) -> str | None:
    if asked in ("", "auto"):
        return auto
    return None if asked == "none" else asked


class RequestParsing:
    """One request's parser: vLLM's output deltas in, the contract's deltas out."""

    def __init__(
        self, parser: Any, request: ChatCompletionRequest, include_reasoning: bool, prompt: list[int] | None = None
    ) -> None:
        self.parser = parser
        self.request = request
        self.prompt = prompt  # the prompt's ids when the parser's format renders it (harmony)
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
