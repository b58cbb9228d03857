"""Tool calls out of a model's output, the same way for every engine.

A forced call (tool_choice required, or a named function) was decoded under a JSON Schema
(``switchyard.engine.structured``), so its text is the calls: a named function's arguments
stream as they come, an array of calls is parsed at the end. With tool_choice auto the model
writes calls in its own format, chosen at load from its chat template:

- ``hermes`` (Hermes, Qwen): ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``,
  anywhere in the text, possibly several;
- ``llama3_json`` (Llama 3.x): the whole answer is ``{"name": ..., "parameters": {...}}``
  (optionally after ``<|python_tag|>``, several separated by ``;``).

Text that is not a call stays content; text that might still become a call is held back, so
a streamed call is never half shown as content.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from switchyard.engine.structured import ToolPlan
from switchyard.v1 import inference_pb2 as pb

OPEN, CLOSE = "<tool_call>", "</tool_call>"
PYTHON_TAG = "<|python_tag|>"
PARSERS = ("hermes", "llama3_json")


def parser_for(chat_template: str) -> str:
    """The tool-call format a chat template teaches its model."""
    if OPEN in chat_template:
        return "hermes"
    if PYTHON_TAG in chat_template or "ipython" in chat_template:
        return "llama3_json"
    return "hermes"


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _held_back(text: str, tag: str) -> int:
    """How many characters at the end of ``text`` could be the start of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


class CallShaper:
    """Turns an engine's stream of Deltas and Finished into the contract's, with tool calls."""

    def __init__(self, plan: ToolPlan | None, parser: str) -> None:
        self.plan = plan
        self.mode = plan.mode if plan is not None and plan.parses_calls else "none"
        self.parser = parser
        self.names = {f.name for f in plan.functions} if plan is not None else set()
        self.calls = 0
        self._text = ""  # held back: not yet content, maybe a call
        self._inside = False  # hermes: between <tool_call> and </tool_call>
        self._named_id = ""

    def feed(self, response: pb.GenerateResponse) -> list[pb.GenerateResponse]:
        if self.mode == "none":
            return [response]
        if response.HasField("finished"):
            return self._finish(response.finished)
        delta = response.delta
        if self.mode == "named":
            return [self._named(delta)]
        if self.mode == "required" or (self.parser == "llama3_json" and self._maybe_json(delta.text)):
            self._text += delta.text
            return self._without_text(delta)
        if self.parser == "llama3_json":
            return [response]
        return self._hermes(delta)

    # --- forced calls ---------------------------------------------------------------------

    def _named(self, delta: pb.Delta) -> pb.GenerateResponse:
        out = pb.Delta(token_ids=delta.token_ids, logprobs=delta.logprobs)
        piece = pb.ToolCallDelta(index=0, arguments=delta.text)
        if not self._named_id:
            self._named_id = new_call_id()
            piece.id, piece.name = self._named_id, self.plan.named if self.plan else ""
            self.calls = 1
        out.tool_calls.append(piece)
        return pb.GenerateResponse(delta=out)

    @staticmethod
    def _without_text(delta: pb.Delta) -> list[pb.GenerateResponse]:
        if delta.token_ids or delta.logprobs:
            return [pb.GenerateResponse(delta=pb.Delta(token_ids=delta.token_ids, logprobs=delta.logprobs))]
        return []

    def _finish(self, finished: pb.Finished) -> list[pb.GenerateResponse]:
        out: list[pb.GenerateResponse] = []
        if self.mode == "required" or (self.parser == "llama3_json" and self._text):
            calls = self._array_calls() if self.mode == "required" else self._llama_calls()
            out.append(self._emit(calls) if calls else self._content(self._text))
            self._text = ""
        elif self.mode == "auto" and (self._text or self._inside):
            out.extend(self._hermes_rest())
        if self.calls and finished.reason == pb.FINISH_REASON_STOP:
            finished.reason = pb.FINISH_REASON_TOOL_CALLS
        return [*(o for o in out if o.delta.text or o.delta.tool_calls), pb.GenerateResponse(finished=finished)]

    def _array_calls(self) -> list[tuple[str, Any]]:
        try:
            value = json.loads(self._text)
        except ValueError:
            return []  # cut short (max_tokens): what came stays content
        if not isinstance(value, list):
            return []
        return [(c["name"], c["arguments"]) for c in value if isinstance(c, dict) and "name" in c and "arguments" in c]

    # --- auto: the model's own format -----------------------------------------------------

    def _maybe_json(self, text: str) -> bool:
        """Llama 3 JSON calls are the whole answer: hold it while it may be one."""
        if self._text:
            return True
        start = text.lstrip()
        return start.startswith(("{", PYTHON_TAG[: len(start)])) if start else False

    def _llama_calls(self) -> list[tuple[str, Any]]:
        text = self._text.strip().removeprefix(PYTHON_TAG).strip()
        calls: list[tuple[str, Any]] = []
        for part in text.split(";"):
            try:
                value = json.loads(part)
            except ValueError:
                return []
            arguments = value.get("parameters", value.get("arguments")) if isinstance(value, dict) else None
            if not isinstance(value, dict) or value.get("name") not in self.names or not isinstance(arguments, dict):
                return []
            calls.append((value["name"], arguments))
        return calls

    def _hermes(self, delta: pb.Delta) -> list[pb.GenerateResponse]:
        self._text += delta.text
        out = self._without_text(delta)
        while True:
            if not self._inside:
                start = self._text.find(OPEN)
                if start < 0:
                    keep = _held_back(self._text, OPEN)
                    out.append(self._content(self._text[: len(self._text) - keep]))
                    self._text = self._text[len(self._text) - keep :]
                    break
                out.append(self._content(self._text[:start]))
                self._text, self._inside = self._text[start + len(OPEN) :], True
            end = self._text.find(CLOSE)
            if end < 0:
                break
            out.append(self._hermes_call(self._text[:end]))
            self._text, self._inside = self._text[end + len(CLOSE) :], False
        return [o for o in out if o.delta.text or o.delta.tool_calls or o.delta.token_ids or o.delta.logprobs]

    def _hermes_call(self, body: str) -> pb.GenerateResponse:
        try:
            value = json.loads(body)
        except ValueError:
            value = None
        if isinstance(value, dict) and value.get("name") in self.names and isinstance(value.get("arguments"), dict):
            return self._emit([(value["name"], value["arguments"])])
        return self._content(OPEN + body + CLOSE)  # not a call after all

    def _hermes_rest(self) -> list[pb.GenerateResponse]:
        """At the end: an open call without its closing tag (cut by a stop or max_tokens)."""
        if self._inside:
            call = self._hermes_call(self._text)
            if call.delta.tool_calls:
                return [call]
            return [self._content(OPEN + self._text)]
        return [self._content(self._text)]

    # --- output ---------------------------------------------------------------------------

    @staticmethod
    def _content(text: str) -> pb.GenerateResponse:
        return pb.GenerateResponse(delta=pb.Delta(text=text))

    def _emit(self, calls: list[tuple[str, Any]]) -> pb.GenerateResponse:
        delta = pb.Delta()
        for name, arguments in calls:
            delta.tool_calls.append(
                pb.ToolCallDelta(
                    index=self.calls, id=new_call_id(), name=name, arguments=json.dumps(arguments, ensure_ascii=False)
                )
            )
            self.calls += 1
        return pb.GenerateResponse(delta=delta)
