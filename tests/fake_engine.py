"""An in-memory engine behind the real adapter interface, for fast tests of the layers above
it (model slots, the host, the servicer). Models are files ending in ``.fake`` under a root;
a model "generates" the characters of its prompt back, then stops (or reaches max_tokens).
Never a stand-in for the real-engine tests: those run llama-server and vLLM."""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psutil
from prometheus_client.metrics_core import Metric

from switchyard.engine.params import EmbedParams, GenerationParams, TokenizeParams
from switchyard.engine.protocol import LoadSpec, ModelInfo, Progress
from switchyard.errors import FailedPrecondition, InvalidArgument, Unavailable
from switchyard.v1 import common_pb2, control_pb2, inference_pb2


class FakeModel:
    device = "fake"

    def __init__(self, adapter: FakeAdapter, spec: LoadSpec) -> None:
        self.adapter = adapter
        self.spec = spec
        self.stopped = False
        self.died = asyncio.Event()
        self.death = ""

    def processes(self) -> list[psutil.Process]:
        return []

    async def ready(self, progress: Progress) -> ModelInfo:
        progress(0.5, "half way")
        await self.adapter.gate.wait()
        if self.spec.path.read_text().startswith("fail"):
            raise RuntimeError("the weights are rotten")
        return ModelInfo(vocab_size=256, max_model_len=1024)

    async def failed(self) -> str:
        await self.died.wait()
        return self.death

    def die(self, reason: str) -> None:
        self.death = reason
        self.died.set()

    def engine_metrics(self) -> list[Metric]:
        return []

    async def occupancy(self) -> control_pb2.Load:
        return control_pb2.Load()

    async def generate(self, params: GenerationParams) -> AsyncIterator[inference_pb2.GenerateResponse]:
        if self.adapter.fail_before_first:
            raise Unavailable("this fake engine fails before its first token")
        if params.chat is not None:
            text = "".join(str(m["content"]) for m in params.chat.messages)
        else:
            text = params.prompt or ""
        produced = reasoned = called = 0
        try:
            for delta in _parsed(text[: params.max_tokens or len(text)], params):
                await asyncio.sleep(self.adapter.token_delay_s)
                if self.stopped:
                    break
                produced += 1
                reasoned += bool(delta.reasoning)
                called += len(delta.tool_calls)
                yield inference_pb2.GenerateResponse(delta=delta)
        except (asyncio.CancelledError, GeneratorExit):
            self.adapter.cancelled += 1
            raise
        reason = inference_pb2.FINISH_REASON_TOOL_CALLS if called else inference_pb2.FINISH_REASON_STOP
        if self.stopped:
            reason = inference_pb2.FINISH_REASON_ABORTED
        elif params.max_tokens is not None and produced == params.max_tokens:
            reason = inference_pb2.FINISH_REASON_LENGTH
        usage = inference_pb2.Usage(prompt_tokens=len(text), completion_tokens=produced, reasoning_tokens=reasoned)
        yield inference_pb2.GenerateResponse(finished=inference_pb2.Finished(reason=reason, usage=usage))

    async def tokenize(self, params: TokenizeParams) -> inference_pb2.TokenizeResponse:
        return inference_pb2.TokenizeResponse(token_ids=list((params.text or "").encode()))

    async def detokenize(self, token_ids: list[int]) -> str:
        return bytes(token_ids).decode(errors="replace")

    async def embed(self, params: EmbedParams) -> inference_pb2.EmbedResponse:
        """A unit vector per input: the counts of its bytes' low two bits."""
        response = inference_pb2.EmbedResponse()
        for item in params.inputs:
            data = item.encode() if isinstance(item, str) else bytes(item)
            counts = [sum(1 for b in data if b % 4 == k) for k in range(4)]
            norm = math.sqrt(sum(c * c for c in counts)) or 1.0
            response.embeddings.add().values.extend(c / norm for c in counts)
            response.usage.prompt_tokens += len(data)
        return response

    async def stop(self) -> None:
        self.stopped = True
        await self.adapter.stop_gate.wait()
        self.adapter.running.remove(self)


CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)


def _parsed(text: str, params: GenerationParams) -> Iterator[inference_pb2.Delta]:
    """The echoed text one character per delta, as an engine with a parser of its own would
    give it: a chat's leading ``<think>...</think>`` as reasoning, and, with tool_choice auto,
    ``<tool_call>{"name", "arguments"}</tool_call>`` as calls (not forced: switchyard shapes those)."""
    chat = params.chat
    if chat is not None and text.startswith("<think>") and "</think>" in text:
        thought, _, text = text.removeprefix("<think>").partition("</think>")
        if chat.include_reasoning:
            yield from (inference_pb2.Delta(reasoning=char) for char in thought)
    auto = chat is not None and chat.plan.mode == "auto" and chat.functions
    for index, piece in enumerate(CALL.split(text) if auto else [text]):
        if index % 2:
            call = json.loads(piece)
            yield inference_pb2.Delta(
                tool_calls=[
                    inference_pb2.ToolCallDelta(
                        index=index // 2, id=f"call_{index}", name=call["name"], arguments=json.dumps(call["arguments"])
                    )
                ]
            )
        else:
            yield from (inference_pb2.Delta(text=char) for char in piece)


class FakeAdapter:
    version = "fake 1"

    def __init__(self, kind: common_pb2.Engine.ValueType = common_pb2.ENGINE_LLAMACPP) -> None:
        self.kind = kind
        self.token_delay_s = 0.0  # between generated characters
        self.fail_before_first = False  # every generation fails with UNAVAILABLE before output
        self.cancelled = 0  # generations ended by their caller going away
        self.gate = asyncio.Event()  # loads finish once it is set
        self.gate.set()
        self.stop_gate = asyncio.Event()  # stops finish once it is set
        self.stop_gate.set()
        self.launches: list[str] = []
        self.running: list[FakeModel] = []

    def is_model(self, path: Path) -> bool:
        return path.suffix == ".fake"

    def model_path(self, path: Path, shown: str) -> Path:
        if not self.is_model(path):
            raise InvalidArgument(f"{shown} is not a fake model")
        return path

    def launch_args(self, path: Path, name: str, request: control_pb2.LoadModelRequest) -> Any:
        if request.llamacpp.HasField("ctx_size") and request.llamacpp.ctx_size < 16:
            raise InvalidArgument("llamacpp.ctx_size too small")
        return {"path": str(path)}

    async def launch(self, spec: LoadSpec, progress: Progress) -> FakeModel:
        if spec.path.read_text().startswith("refuse"):
            raise FailedPrecondition(f"loading {spec.name} failed: refused")
        self.launches.append(spec.name)
        model = FakeModel(self, spec)
        self.running.append(model)
        return model

    async def close(self) -> None:
        pass
