"""Forced tool calls out of a model's output, the same way for every engine.

A forced call (tool_choice required, or a named function) was decoded under a JSON Schema
(``switchyard.engine.structured``), so its text is the calls: a named function's arguments
stream as they come, an array of calls (required) is parsed at the end. A forced answer cut
short (max_tokens) is no call at all: nothing partial is passed on as content.

With tool_choice auto the model writes calls in its own format, and the engine's own parser
reads them (llama-server's chat layer; vLLM's tool parsers): nothing here.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from switchyard.engine.structured import ToolPlan
from switchyard.v1 import inference_pb2 as pb


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def forced(plan: ToolPlan | None) -> bool:
    """Whether the request's calls are forced (decoded under their schema) and read here."""
    return plan is not None and plan.mode in ("required", "named") and bool(plan.functions)


class CallShaper:
    """Turns an engine's stream of a forced answer into the contract's tool calls."""

    def __init__(self, plan: ToolPlan) -> None:
        self.plan = plan
        self.calls = 0
        self._text = ""  # required: the array of calls, read whole at the end
        self._named_id = ""

    def feed(self, response: pb.GenerateResponse) -> list[pb.GenerateResponse]:
        if response.HasField("finished"):
            return self._finish(response.finished)
        delta = response.delta
        if self.plan.mode == "named":
            return [self._named(delta)]
        self._text += delta.text
        if delta.token_ids or delta.logprobs:
            return [pb.GenerateResponse(delta=pb.Delta(token_ids=delta.token_ids, logprobs=delta.logprobs))]
        return []

    def _named(self, delta: pb.Delta) -> pb.GenerateResponse:
        out = pb.Delta(token_ids=delta.token_ids, logprobs=delta.logprobs)
        piece = pb.ToolCallDelta(index=0, arguments=delta.text)
        if not self._named_id:
            self._named_id = new_call_id()
            piece.id, piece.name = self._named_id, self.plan.named
            self.calls = 1
        out.tool_calls.append(piece)
        return pb.GenerateResponse(delta=out)

    def _finish(self, finished: pb.Finished) -> list[pb.GenerateResponse]:
        out: list[pb.GenerateResponse] = []
        if self.plan.mode == "required":
            calls = self._array_calls() if finished.reason == pb.FINISH_REASON_STOP else []
            if calls:
                out.append(self._emit(calls))
        if self.calls and finished.reason == pb.FINISH_REASON_STOP:
            finished.reason = pb.FINISH_REASON_TOOL_CALLS
        return [*out, pb.GenerateResponse(finished=finished)]

    def _array_calls(self) -> list[tuple[str, Any]]:
        try:
            value = json.loads(self._text)
        except (ValueError, RecursionError):
            return []
        if not isinstance(value, list):
            return []
        return [(c["name"], c["arguments"]) for c in value if isinstance(c, dict) and "name" in c and "arguments" in c]

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
