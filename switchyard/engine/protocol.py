"""What an engine adapter implements: only what really differs between engines.

Modelled on vLLM's ``EngineClient``: the shared layers depend on these Protocols, never on
llama-server or AsyncLLM. An ``EngineAdapter`` checks a load and launches a model; a
``RunningModel`` is one launched model. Every state transition, in-flight count, restart,
eviction and error around them belongs to the model slots (``switchyard.engine.slot`` and
``switchyard.engine.host``), so a third engine would not copy a state machine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psutil
from prometheus_client.metrics_core import Metric

from switchyard.engine.params import EmbedParams, GenerationParams, TokenizeParams
from switchyard.v1 import common_pb2, control_pb2, inference_pb2

# Called by a launch with (progress in [0, 1], what it is doing).
Progress = Callable[[float, str], None]
TASK_NAMES = {control_pb2.MODEL_TASK_GENERATE: "generate", control_pb2.MODEL_TASK_EMBED: "embed"}


def task_of(request: control_pb2.LoadModelRequest) -> control_pb2.ModelTask.ValueType:
    """What a load is for (unset: generation)."""
    return (
        control_pb2.MODEL_TASK_EMBED
        if request.task == control_pb2.MODEL_TASK_EMBED
        else control_pb2.MODEL_TASK_GENERATE
    )


@dataclass(frozen=True)
class ModelInfo:
    """What request validation needs to know about a started model."""

    vocab_size: int
    max_model_len: int
    tool_parser: str = ""  # what reads its tool calls with tool_choice auto ("": nothing)
    reasoning_parser: str = ""  # what tells its reasoning from its answer ("": nothing)


@dataclass(frozen=True)
class LoadSpec:
    """A validated load: where the model is, the names it answers to, and the engine's launch
    arguments, built once by ``EngineAdapter.launch_args``."""

    path: Path
    name: str
    aliases: tuple[str, ...]
    keep_alive_s: float  # 0: never unloaded for idleness
    request: control_pb2.LoadModelRequest
    launch: Any

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    @property
    def task(self) -> control_pb2.ModelTask.ValueType:
        return task_of(self.request)


class RunningModel(Protocol):
    """One launched model: its engine instance and the processes holding it."""

    device: str

    def processes(self) -> list[psutil.Process]:
        """The OS processes that hold this model (stopped means all of them are gone)."""

    async def ready(self, progress: Progress) -> ModelInfo:
        """Wait until the model serves (health, warm-up); raise if it cannot."""

    async def failed(self) -> str:
        """Return, with the reason, when the model's engine dies on its own."""

    async def occupancy(self) -> control_pb2.Load:
        """Requests running and waiting in the engine, and KV-cache use."""

    def engine_metrics(self) -> list[Metric]:
        """The engine's own Prometheus families as last read (llama-server's ``llamacpp:``),
        for this service's /metrics; empty where the engine registers them in this process."""

    def generate(self, params: GenerationParams) -> AsyncIterator[inference_pb2.GenerateResponse]:
        """Stream deltas then one Finished; closing the iterator aborts the request."""

    async def tokenize(self, params: TokenizeParams) -> inference_pb2.TokenizeResponse:
        """Token ids (and pieces) with the model's tokenizer."""

    async def detokenize(self, token_ids: list[int]) -> str:
        """Text of token ids."""

    async def embed(self, params: EmbedParams) -> inference_pb2.EmbedResponse:
        """One vector per input, and the prompt tokens (a model loaded for embeddings)."""

    async def stop(self) -> None:
        """End requests in flight (they finish ABORTED) and stop the engine instance."""


class EngineAdapter(Protocol):
    kind: common_pb2.Engine.ValueType
    version: str

    def is_model(self, path: Path) -> bool:
        """Whether ``path`` is a model this engine can load (a GGUF file, an HF folder)."""

    def model_path(self, path: Path, shown: str) -> Path:
        """The file or folder to load for a resolved path (``shown`` as the user wrote it);
        InvalidArgument when it is not a model this engine loads."""

    def launch_args(self, path: Path, name: str, request: control_pb2.LoadModelRequest) -> Any:
        """Check the load's options and build the engine's launch arguments; raise
        InvalidArgument before anything is stopped or started."""

    async def launch(self, spec: LoadSpec, progress: Progress) -> RunningModel:
        """Start the model's engine instance; clean up after itself if it raises."""

    async def close(self) -> None:
        """Release what the adapter holds beyond its models (HTTP clients)."""
