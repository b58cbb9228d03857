"""Choosing a backend for a request: by engine, then by the model (loaded, then loading, then
loadable on demand), then by load (power of two choices over outstanding plus queued
requests). Pure logic, unit-tested.

A request that names no engine is always served: when several engines serve its model (in
the best state found), the engine order decides (``EnginePolicy``). When the engine the order
prefers for a model is down (its backends unreachable, but they served the model when last
seen), the request gets UNAVAILABLE rather than another engine's answer, unless the policy
allows failing over: an answer should not depend on which part happens to be up.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from switchyard.engines import DEFAULT_ORDER, engine_name
from switchyard.errors import FailedPrecondition, NotFound, Unavailable
from switchyard.model_status import model_in
from switchyard.v1 import common_pb2, control_pb2

LOADED, LOADING, ERROR = control_pb2.MODEL_STATE_LOADED, control_pb2.MODEL_STATE_LOADING, control_pb2.MODEL_STATE_ERROR


@dataclass(frozen=True)
class EnginePolicy:
    """Which engine serves a request that names none, when several could."""

    order: tuple[common_pb2.Engine.ValueType, ...] = DEFAULT_ORDER
    failover: bool = False  # the preferred engine down: serve from the next one instead of UNAVAILABLE

    def rank(self, engine: common_pb2.Engine.ValueType) -> int:
        return self.order.index(engine) if engine in self.order else len(self.order)


@dataclass
class BackendView:
    """What picking needs to know of a backend."""

    address: str
    engine: common_pb2.Engine.ValueType
    reachable: bool
    status: control_pb2.EngineStatus
    outstanding: int = 0
    known: frozenset[str] = frozenset()  # the names it served when last reachable

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


def _down_serving(pool: list[BackendView], model: str) -> list[BackendView]:
    return [b for b in pool if not b.reachable and model in b.known]


def eligible(
    backends: Sequence[BackendView],
    engine: common_pb2.Engine.ValueType,
    model: str,
    loadable: Collection[str] = (),
    policy: EnginePolicy = EnginePolicy(),
) -> list[BackendView]:
    """Backends that can serve (engine, model), or the error saying what is missing.

    ``loadable`` holds the addresses of backends whose model roots hold ``model``.
    """
    kind = "backend" if engine == common_pb2.ENGINE_UNSPECIFIED else f"{engine_name(engine)} backend"
    pool = [b for b in backends if engine in (common_pb2.ENGINE_UNSPECIFIED, b.engine)]
    if not pool:
        raise Unavailable(f"no {kind} is configured")
    live = [b for b in pool if b.reachable]
    down = _down_serving(pool, model) if model else []
    if not live:
        raise Unavailable(f"no {kind} is reachable")
    where = f"any {kind}"
    if model:
        try:
            serving = _with_model(live, model, loadable, where)
        except NotFound:
            if down:
                raise Unavailable(f"model {model!r} is served by {_names(down)}, unreachable now; retry") from None
            raise
    else:
        serving = [b for b in live if b.status.state == LOADED] or [b for b in live if b.status.state == LOADING]
        failed = next((m for b in live for m in b.status.models if m.state == ERROR), None)
        if not serving and failed is not None:  # a model that died (and is being restarted): come back
            raise Unavailable(f"model {failed.name!r} is in error on {where}: {failed.error}; retry")
        if not serving:
            raise FailedPrecondition(f"no model loaded on {where}")
    if engine != common_pb2.ENGINE_UNSPECIFIED:
        return serving
    best = min(policy.rank(b.engine) for b in serving)
    preferred_down = [b for b in down if policy.rank(b.engine) < best]
    if preferred_down and not policy.failover:
        raise Unavailable(
            f"model {model!r} is served by {_names(preferred_down)}, unreachable now; retry, or set engine "
            "(the engine order would fail over only with engine_failover on)"
        )
    return [b for b in serving if policy.rank(b.engine) == best]


def _names(backends: Sequence[BackendView]) -> str:
    return "the " + " and ".join(sorted({engine_name(b.engine) for b in backends})) + " engine"


def choose(candidates: Sequence[BackendView], rng: random.Random) -> BackendView:
    """Power of two choices: the less loaded of two random candidates."""
    if len(candidates) == 1:
        return candidates[0]
    first, second = rng.sample(list(candidates), 2)
    return first if first.score <= second.score else second
