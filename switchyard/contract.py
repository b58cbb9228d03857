"""Facts the contract defines beyond its messages: the gRPC service names, the chat roles, and
the limits every engine enforces on a request.

The engines validate against these (``switchyard.engine.params``), the router registers the
service names, and the gateway documents the same limits in its OpenAPI schema; keeping them
here lets the gateway and the router depend on the contract without importing engine code.
"""

from __future__ import annotations

from switchyard.v1 import control_pb2, inference_pb2

SERVICE_NAMES = (
    inference_pb2.DESCRIPTOR.services_by_name["Inference"].full_name,
    control_pb2.DESCRIPTOR.services_by_name["Control"].full_name,
)
CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
MAX_LOGPROBS = 20  # alternatives per token
MAX_STOP_STRINGS = 16
MAX_EMBED_INPUTS = 2048
# ChatInput.reasoning_effort: OpenAI's levels (vLLM takes the same; a gpt-oss model low to high)
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high")
