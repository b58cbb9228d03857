"""The seed's ``/v1/status`` shape, aggregated over the replicas the router reports.

Per engine: ``loading`` if any replica loads, else ``loaded`` if any serves, else ``error`` if
any failed (or the engine has no backend), else ``idle``. The seed's fields come first and
keep their names; the rest (progress, error, load, replicas) are additions.
"""

from __future__ import annotations

from typing import Any

from switchyard.engines import ENGINE_NAMES
from switchyard.v1 import control_pb2

STATES = {
    control_pb2.MODEL_STATE_IDLE: "idle",
    control_pb2.MODEL_STATE_LOADING: "loading",
    control_pb2.MODEL_STATE_LOADED: "loaded",
    control_pb2.MODEL_STATE_ERROR: "error",
}


def replica_json(status: control_pb2.EngineStatus) -> dict[str, Any]:
    return {
        "backend": status.backend,
        "status": STATES.get(status.state, "error"),
        "model": status.model or None,
        "model_path": status.model_path or None,
        "progress": round(status.load_progress, 3),
        "message": status.load_message or None,
        "error": status.error or None,
        "process_alive": status.process_alive,
        "running": status.load.running_requests,
        "waiting": status.load.waiting_requests,
        "kv_cache_usage": round(status.load.kv_cache_usage, 4),
        "engine_version": status.engine_version or None,
        "device": status.device or None,
        "max_model_len": status.max_model_len or None,
    }


def engine_json(name: str, statuses: list[control_pb2.EngineStatus]) -> dict[str, Any]:
    states = [s.state for s in statuses]
    if control_pb2.MODEL_STATE_LOADING in states:
        state = control_pb2.MODEL_STATE_LOADING
    elif control_pb2.MODEL_STATE_LOADED in states:
        state = control_pb2.MODEL_STATE_LOADED
    elif control_pb2.MODEL_STATE_ERROR in states or not statuses:
        state = control_pb2.MODEL_STATE_ERROR
    else:
        state = control_pb2.MODEL_STATE_IDLE
    lead = next((s for s in statuses if s.state == state), None)
    body: dict[str, Any] = {"status": STATES[state], "model": (lead.model or None) if lead else None}
    if name == "llamacpp":
        body["process_alive"] = any(s.process_alive for s in statuses)
    loading = [s.load_progress for s in statuses if s.state == control_pb2.MODEL_STATE_LOADING]
    body["progress"] = round(min(loading), 3) if loading else (1.0 if state == control_pb2.MODEL_STATE_LOADED else 0.0)
    errors = [s.error for s in statuses if s.error]
    body["error"] = errors[0] if errors else (None if statuses else f"no {name} backend is configured")
    body["running"] = sum(s.load.running_requests for s in statuses)
    body["waiting"] = sum(s.load.waiting_requests for s in statuses)
    body["replicas"] = [replica_json(s) for s in statuses]
    return body


def seed_status(statuses: list[control_pb2.EngineStatus]) -> dict[str, Any]:
    return {name: engine_json(name, [s for s in statuses if s.engine == kind]) for kind, name in ENGINE_NAMES.items()}
