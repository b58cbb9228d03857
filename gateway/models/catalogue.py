"""``/v1/models``: what can be served, from the router's statuses (models in slots) and its
listing of the model roots (models that load on demand).

Each id is listed once, as OpenAI lists a model: its object plus ``engines`` (each engine
that serves it, with its ``state``: loaded, loading, error or available, ``replicas`` and
``aliases``), and, for the engine that serves a request naming only this id by the default
engine order (the best state first, then llama.cpp before vLLM), its ``engine``, ``state``,
``replicas`` and ``aliases`` at the top. An alias has an entry of its own naming the model it
stands for in ``alias_of``, so any client picking from the list can use it.
"""

from __future__ import annotations

import time
from typing import Any

from switchyard.engines import DEFAULT_ORDER, ENGINE_NAMES, ENGINES_BY_NAME
from switchyard.v1 import control_pb2

STATE_NAMES = {
    control_pb2.MODEL_STATE_LOADED: "loaded",
    control_pb2.MODEL_STATE_LOADING: "loading",
    control_pb2.MODEL_STATE_ERROR: "error",
}
STATE_ORDER = ("loaded", "loading", "error", "available")


def _entry(model_id: str, engine: str, state: str, created: int) -> dict[str, Any]:
    return {
        "id": model_id,
        "object": "model",
        "created": created,
        "owned_by": "switchyard",
        "engine": engine,
        "state": state,
        "replicas": 0,
        "aliases": [],
    }


def model_list(
    statuses: list[control_pb2.EngineStatus], available: list[control_pb2.ModelEntry]
) -> list[dict[str, Any]]:
    """One entry per (name, engine), slots first then what the model roots hold."""
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    now = int(time.time())
    for status in statuses:
        engine = ENGINE_NAMES.get(status.engine)
        if engine is None:
            continue
        for model in status.models:
            state = STATE_NAMES.get(model.state)
            if state is None:
                continue
            created = model.loaded_at.seconds or now
            entry = entries.setdefault((model.name, engine), _entry(model.name, engine, state, created))
            if STATE_ORDER.index(state) < STATE_ORDER.index(entry["state"]):
                entry["state"] = state  # the best state over the replicas
            entry["replicas"] += 1
            entry["aliases"] = sorted(set(entry["aliases"]) | set(model.aliases))
            for alias in model.aliases:
                aliased = entries.setdefault(
                    (alias, engine), {**_entry(alias, engine, state, created), "alias_of": model.name}
                )
                aliased["replicas"] = entry["replicas"]
    for item in available:
        engine = ENGINE_NAMES.get(item.engine)
        if engine is not None and (item.name, engine) not in entries:
            entries[(item.name, engine)] = _entry(item.name, engine, "available", now)
    return _one_per_id(list(entries.values()))


def _one_per_id(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_id.setdefault(entry["id"], []).append(entry)
    listed = []
    for found in by_id.values():
        found.sort(key=lambda e: (STATE_ORDER.index(e["state"]), DEFAULT_ORDER.index(ENGINES_BY_NAME[e["engine"]])))
        engines = [{k: e[k] for k in ("engine", "state", "replicas", "aliases")} for e in found]
        listed.append({**found[0], "engines": engines})
    return sorted(listed, key=lambda e: (STATE_ORDER.index(e["state"]), e["engine"], e["id"]))
