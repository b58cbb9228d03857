"""The one interface both engine adapters implement; the shared servicer sees only this.

Modelled on vLLM's ``EngineClient``: the transport layer (grpc servicer) depends on this
Protocol, never on llama-server or AsyncLLM, so one servicer and one conformance suite serve
both engines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from switchyard.engine.params import GenerationParams, TokenizeParams
from switchyard.engine.status import StatusBoard
from switchyard.v1 import common_pb2, control_pb2, inference_pb2


@dataclass(frozen=True)
class LoadSpec:
    """A validated load request: a path inside the model roots and engine options."""

    path: Path
    served_name: str
    request: control_pb2.LoadModelRequest


@dataclass(frozen=True)
class ModelInfo:
    """What validation needs to know about the loaded model."""

    name: str
    vocab_size: int
    max_model_len: int


class Engine(Protocol):
    kind: common_pb2.Engine.ValueType
    board: StatusBoard

    @property
    def model(self) -> ModelInfo | None:
        """The loaded model, or None when nothing is loaded."""

    def prepare_load(self, request: control_pb2.LoadModelRequest) -> LoadSpec:
        """Validate a load request (path confinement, options) without side effects."""

    async def load(self, spec: LoadSpec) -> None:
        """Load the model, replacing any loaded one; progress goes to ``board``."""

    async def unload(self) -> None:
        """Unload the model, aborting requests in flight; a no-op when idle."""

    async def refresh_load(self) -> None:
        """Update the load figures on ``board`` from the engine's own counters."""

    def generate(self, params: GenerationParams) -> AsyncIterator[inference_pb2.GenerateResponse]:
        """Stream deltas then one Finished; closing the iterator aborts the request."""

    async def tokenize(self, params: TokenizeParams) -> inference_pb2.TokenizeResponse:
        """Token ids (and pieces) with the loaded model's tokenizer."""

    async def detokenize(self, token_ids: list[int]) -> str:
        """Text of token ids."""

    def list_models(self) -> list[control_pb2.ModelEntry]:
        """Models under the model roots this engine can load."""

    async def shutdown(self) -> None:
        """Abort requests and release the model and any child process."""
