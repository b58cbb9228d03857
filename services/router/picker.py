"""Choosing a backend for a request: by engine, then by the model (loaded, then loading, then
loadable on demand), then by load (power of two choices over outstanding plus queued
requests). Pure logic, unit-tested."""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from switchyard.engines import engine_name
from switchyard.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from switchyard.model_status import model_in
from switchyard.v1 import common_pb2, control_pb2

LOADED, LOADING, ERROR = control_pb2.MODEL_STATE_LOADED, control_pb2.MODEL_STATE_LOADING, control_pb2.MODEL_STATE_ERROR


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


def _with_model(live: list[BackendView], model: str, loadable: Collection[str], where: str) -> list[BackendView]:
    found = [(b, model_in(b.status, model)) for b in live]
    for state in (LOADED, LOADING):
        holding = [b for b, m in found if m is not None and m.state == state]
        if holding:
            return holding
    can_load = [b for b in live if b.address in loadable and b.status.autoload]
    if can_load:
        return can_load  # the engine loads it on demand; the request waits for it there
    failed = next((m for _, m in found if m is not None and m.state == ERROR), None)
    if failed is not None:
        raise Unavailable(f"model {model!r} is in error on {where}: {failed.error}")
    raise NotFound(f"model {model!r} is not loaded on {where}")


def eligible(
    backends: Sequence[BackendView],
    engine: common_pb2.Engine.ValueType,
    model: str,
    loadable: Collection[str] = (),
) -> list[BackendView]:
    """Backends that can serve (engine, model), or the error saying what is missing.

    ``loadable`` holds the addresses of backends whose model roots hold ``model``.
    """
    kind = "backend" if engine == common_pb2.ENGINE_UNSPECIFIED else f"{engine_name(engine)} backend"
    pool = [b for b in backends if engine in (common_pb2.ENGINE_UNSPECIFIED, b.engine)]
    if not pool:
        raise Unavailable(f"no {kind} is configured")
    live = [b for b in pool if b.reachable]
    if not live:
        raise Unavailable(f"no {kind} is reachable")
    where = f"any {kind}"
    if model:
        serving = _with_model(live, model, loadable, where)
    else:
        serving = [b for b in live if b.status.state == LOADED] or [b for b in live if b.status.state == LOADING]
        if not serving:
            raise FailedPrecondition(f"no model loaded on {where}")
    engines = {b.engine for b in serving}
    if engine == common_pb2.ENGINE_UNSPECIFIED and len(engines) > 1:
        what = f"model {model!r} is" if model else "models are"
        raise InvalidArgument(f"{what} served by both vllm and llamacpp; set engine to choose one")
    return serving


def choose(candidates: Sequence[BackendView], rng: random.Random) -> BackendView:
    """Power of two choices: the less loaded of two random candidates."""
    if len(candidates) == 1:
        return candidates[0]
    first, second = rng.sample(list(candidates), 2)
    return first if first.score <= second.score else second
