"""The engines the conformance suite runs against, and what differs between them."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

from switchyard.v1 import common_pb2, control_pb2


@dataclass(frozen=True)
class EngineUnderTest:
    name: str
    kind: common_pb2.Engine.ValueType
    other_kind: common_pb2.Engine.ValueType
    module: str
    model: str  # path relative to the model root
    served_name: str
    load_options: dict[str, object]  # LoadModelRequest keyword arguments
    wrong_options: dict[str, object]  # the other engine's options
    service_args: list[str] = field(default_factory=list)


LLAMACPP = EngineUnderTest(
    name="llamacpp",
    kind=common_pb2.ENGINE_LLAMACPP,
    other_kind=common_pb2.ENGINE_VLLM,
    module="services.engine_llamacpp",
    model="switchyard-demo.gguf",
    served_name="switchyard-demo",
    load_options={"llamacpp": control_pb2.LlamacppOptions(ctx_size=4096, parallel=8)},
    wrong_options={"vllm": control_pb2.VllmOptions(dtype="float32")},
    service_args=["--no-restart-on-crash"],
)

VLLM_AVAILABLE = importlib.util.find_spec("vllm") is not None
ENGINES = [LLAMACPP]


def load_request(engine: EngineUnderTest, **overrides: object) -> control_pb2.LoadModelRequest:
    kwargs: dict[str, object] = {
        "engine": engine.kind,
        "model_path": engine.model,
        "served_model_name": engine.served_name,
        **engine.load_options,
        **overrides,
    }
    return control_pb2.LoadModelRequest(**kwargs)  # type: ignore[arg-type]
