"""Choosing a backend for a request: by engine, then by the model loaded, then by load
(power of two choices over outstanding plus queued requests). Pure logic, unit-tested."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from switchyard.engines import engine_name
from switchyard.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from switchyard.v1 import common_pb2, control_pb2


@dataclass
class BackendView:
    """What picking needs to know of a backend."""

    address: str
    engine: common_pb2.Engine.ValueType
    reachable: bool
    status: control_pb2.EngineStatus
    outstanding: int = 0

    @property
    def score(self) -> int:
        load = self.status.load
        return self.outstanding + load.waiting_requests


def eligible(backends: Sequence[BackendView], engine: common_pb2.Engine.ValueType, model: str) -> list[BackendView]:
    """Backends that can serve (engine, model) now, or the error saying what is missing."""
    name = engine_name(engine)
    pool = [b for b in backends if engine in (common_pb2.ENGINE_UNSPECIFIED, b.engine)]
    if not pool:
        raise Unavailable(f"no {name} backend is configured")
    live = [b for b in pool if b.reachable]
    if not live:
        raise Unavailable(f"no {name} backend is reachable")
    loaded = [b for b in live if b.status.state == control_pb2.MODEL_STATE_LOADED]
    if model:
        loaded = [b for b in loaded if b.status.model == model]
    if not loaded:
        where = "any backend" if engine == common_pb2.ENGINE_UNSPECIFIED else f"any {name} backend"
        if model:
            raise NotFound(f"model {model!r} is not loaded on {where}")
        if any(b.status.state == control_pb2.MODEL_STATE_LOADING for b in live):
            raise Unavailable(f"{name} engine is loading a model")
        raise FailedPrecondition(f"no model loaded on {where}")
    engines = {b.engine for b in loaded}
    if engine == common_pb2.ENGINE_UNSPECIFIED and len(engines) > 1:
        what = f"model {model!r} is" if model else "models are"
        raise InvalidArgument(f"{what} served by both vllm and llamacpp; set engine to choose one")
    return loaded


def choose(candidates: Sequence[BackendView], rng: random.Random) -> BackendView:
    """Power of two choices: the less loaded of two random candidates."""
    if len(candidates) == 1:
        return candidates[0]
    first, second = rng.sample(list(candidates), 2)
    return first if first.score <= second.score else second
