"""Reading the models out of an engine's status, the same way in the router and the gateway."""

from __future__ import annotations

from switchyard.v1 import control_pb2


def model_in(status: control_pb2.EngineStatus, name: str) -> control_pb2.ModelStatus | None:
    """The model of ``status`` that answers to ``name`` (its served name or an alias)."""
    return next((m for m in status.models if m.name == name or name in m.aliases), None)
