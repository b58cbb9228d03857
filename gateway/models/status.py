"""The seed's ``/v1/status`` shape, aggregated over the replicas the router reports.

Per engine: ``loading`` if any replica loads, else ``loaded`` if any serves, else ``error`` if
any failed (or the engine has no backend), else ``idle``; ``model`` is the model loaded (or
loading) most recently. The seed's fields come first and keep their names; the rest
(progress, error, load, replicas, ``models``: every model of every replica, and ``pulls``) are
additions. A pull's progress has the same shape here as in the pull route's stream.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from switchyard.engines import ENGINE_NAMES
from switchyard.v1 import control_pb2

STATES = {
    control_pb2.MODEL_STATE_IDLE: "idle",
    control_pb2.MODEL_STATE_LOADING: "loading",
    control_pb2.MODEL_STATE_LOADED: "loaded",
    control_pb2.MODEL_STATE_ERROR: "error",
}
PULL_STATES = {
    control_pb2.PULL_STATE_RESOLVING: "resolving",
    control_pb2.PULL_STATE_WAITING: "waiting",
    control_pb2.PULL_STATE_DOWNLOADING: "downloading",
    control_pb2.PULL_STATE_DONE: "done",
    control_pb2.PULL_STATE_FAILED: "failed",
}


def pull_json(progress: control_pb2.PullProgress) -> dict[str, Any]:
    return {
        "model": progress.model,
        "engine": ENGINE_NAMES.get(progress.engine),
        "state": PULL_STATES.get(progress.state, "unknown"),
        "bytes_done": progress.bytes_done,
        "bytes_total": progress.bytes_total,
        "files_done": progress.files_done,
        "files_total": progress.files_total,
        "bytes_per_second": round(progress.bytes_per_second, 1),
        "current_file": progress.current_file or None,
        "name": progress.name or None,
        "model_path": progress.model_path or None,
        "revision": progress.revision or None,
        "error": progress.error or None,
        "backend": progress.backend or None,
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
        "max_models": status.max_models,
        "autoload": status.autoload,
        "max_in_flight": status.max_in_flight or None,
        "service_restarts": status.service_restarts,
        "device": status.device or None,
        "max_model_len": status.max_model_len or None,
    }


def _when(stamp: Timestamp) -> str | None:
    return stamp.ToJsonString() if stamp.seconds or stamp.nanos else None


def model_json(model: control_pb2.ModelStatus, backend: str) -> dict[str, Any]:
    return {
        "model": model.name,
        "aliases": list(model.aliases),
        "backend": backend,
        "status": STATES.get(model.state, "error"),
        "model_path": model.model_path or None,
        "progress": round(model.load_progress, 3),
        "message": model.load_message or None,
        "error": model.error or None,
        "process_alive": model.process_alive,
        "in_flight": model.in_flight,
        "running": model.load.running_requests,
        "waiting": model.load.waiting_requests,
        "kv_cache_usage": round(model.load.kv_cache_usage, 4),
        "max_model_len": model.max_model_len or None,
        "device": model.device or None,
        "memory_bytes": model.memory_bytes,
        "loaded_at": _when(model.loaded_at),
        "last_used_at": _when(model.last_used_at),
        "keep_alive_s": model.keep_alive_s,
        "expires_at": _when(model.expires_at),
        "tool_parser": model.tool_parser or None,
        "reasoning_parser": model.reasoning_parser or None,
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
    body["models"] = [model_json(m, s.backend) for s in statuses for m in s.models]
    body["pulls"] = [{**pull_json(p), "backend": s.backend} for s in statuses for p in s.pulls]
    return body


def seed_status(statuses: list[control_pb2.EngineStatus]) -> dict[str, Any]:
    return {name: engine_json(name, [s for s in statuses if s.engine == kind]) for kind, name in ENGINE_NAMES.items()}
