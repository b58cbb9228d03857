"""An explicit load as its caller follows it (LoadModel's progress events)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from switchyard.engine.slot import ModelSlot
from switchyard.v1 import control_pb2 as pb


@dataclass
class LoadTicket:
    """A load under way: its task, its slot once known, and how its pull (for a hub model)
    went. Progress: a pull is the first half, the load the second."""

    slot: ModelSlot | None = None
    task: asyncio.Task[ModelSlot] | None = None
    pulled: pb.PullProgress | None = None

    def event(self) -> tuple[pb.ModelState.ValueType, float, str]:
        """(state, progress, message) for a LoadModel event now."""
        pulled = self.pulled
        if self.slot is None:
            if pulled is None:
                return pb.MODEL_STATE_LOADING, 0.0, "resolving the hub model"
            if pulled.state == pb.PULL_STATE_FAILED:
                return pb.MODEL_STATE_ERROR, 0.0, pulled.error
            fraction = pulled.bytes_done / pulled.bytes_total if pulled.bytes_total else 0.0
            mib = 2**20
            message = f"downloading {pulled.bytes_done / mib:.1f} of {pulled.bytes_total / mib:.1f} MiB"
            return pb.MODEL_STATE_LOADING, 0.5 * fraction, message
        model = self.slot.status()
        progress = model.load_progress if pulled is None else 0.5 + 0.5 * model.load_progress
        return model.state, progress, model.load_message or model.error
