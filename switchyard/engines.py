"""The engines by name: the one mapping between the contract's ``Engine`` enum and the names
users write ("vllm", "llamacpp"), shared by services, gateway, CLI and benchmark."""

from __future__ import annotations

from switchyard.v1 import common_pb2

# vLLM first: the seed's /v1/status lists it first.
ENGINE_NAMES: dict[common_pb2.Engine.ValueType, str] = {
    common_pb2.ENGINE_VLLM: "vllm",
    common_pb2.ENGINE_LLAMACPP: "llamacpp",
}
ENGINES_BY_NAME: dict[str, common_pb2.Engine.ValueType] = {name: kind for kind, name in ENGINE_NAMES.items()}


# Which engine serves a request naming only a model that several engines serve (the router's
# engine_order setting, services/router/settings.py, defaults to it).
DEFAULT_ORDER: tuple[common_pb2.Engine.ValueType, ...] = (common_pb2.ENGINE_LLAMACPP, common_pb2.ENGINE_VLLM)


def engine_name(kind: common_pb2.Engine.ValueType) -> str:
    """The engine's name; "any" for ENGINE_UNSPECIFIED."""
    return ENGINE_NAMES.get(kind, "any")
