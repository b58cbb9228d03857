"""Answering the model routes: the catalogue (``/v1/models``), the seed's status, and the
administration of models through the router (load, unload, and pulls from the hub: progress
as server-sent events, or one answer when the pull is done; a client that goes away cancels
the pull once no other caller waits for it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from gateway.connection import Serving
from gateway.errors import ApiError
from gateway.models.catalogue import model_list
from gateway.models.protocol import LoadRequest, PullRequest, UnloadRequest
from gateway.models.status import pull_json, seed_status
from gateway.streaming import Calls, sse_bytes, sse_response
from switchyard.engines import DEFAULT_ORDER, ENGINE_NAMES
from switchyard.hub_names import HF_PREFIX, canonical
from switchyard.v1 import control_pb2


class ModelServing(Serving):
    async def catalogue(self) -> list[dict[str, Any]]:
        """The catalogue as the router sees it now."""
        statuses = await self.connection.control.GetStatus(control_pb2.GetStatusRequest(), timeout=10)
        available = await self.connection.control.ListModels(control_pb2.ListModelsRequest(), timeout=30)
        return model_list(list(statuses.statuses), list(available.models))

    async def model(self, model_id: str) -> dict[str, Any]:
        found = [entry for entry in await self.catalogue() if entry["id"] == model_id]
        if not found:
            raise ApiError(404, f"model {model_id!r} is neither loaded nor under the model roots", "model")
        return found[0]

    async def status(self) -> dict[str, Any]:
        answer = await self.connection.control.GetStatus(control_pb2.GetStatusRequest(), timeout=10)
        return seed_status(list(answer.statuses))

    async def resolved(self, body: LoadRequest) -> LoadRequest:
        """A load by ``model``: the path and engine of the model roots' entry of that name (on
        the engine named, else the first by the default engine order), served under the name."""
        if body.model is None:
            return body
        listing = await self.connection.control.ListModels(control_pb2.ListModelsRequest(), timeout=30)
        found = [
            entry
            for entry in listing.models
            if entry.name == body.model and (body.engine is None or ENGINE_NAMES.get(entry.engine) == body.engine)
        ]
        if not found:
            where = f" for {body.engine}" if body.engine else ""
            raise ApiError(404, f"model {body.model[:80]!r} is not under the model roots{where}", "model")
        entry = min(found, key=lambda e: DEFAULT_ORDER.index(e.engine) if e.engine in DEFAULT_ORDER else 99)
        update = {"model_path": entry.path, "engine": ENGINE_NAMES[entry.engine]}
        resolved = body.model_copy(update={**update, "served_model_name": body.served_model_name or body.model})
        return LoadRequest.model_validate(resolved.model_dump(exclude={"model"}))

    async def load(self, body: LoadRequest) -> dict[str, Any]:
        body = await self.resolved(body)
        assert body.model_path is not None
        last = None
        replicas: set[str] = set()
        connection = self.connection
        load = connection.control.LoadModel(
            body.to_proto(), timeout=self.settings.load_timeout_s, metadata=connection.metadata
        )
        async for event in load:
            last = event
            replicas.add(event.status.backend)
        loaded = _the_loaded(last.status, body) if last else None
        return {
            "status": "success",
            "engine": body.engine,
            "model": loaded.name if loaded else None,
            "model_path": loaded.model_path if loaded else body.model_path,
            "replicas": sorted(replicas),
        }

    async def unload(self, body: UnloadRequest) -> dict[str, Any]:
        answer = await self.connection.control.UnloadModel(body.to_proto(), timeout=self.settings.unload_timeout_s)
        return {
            "status": "success",
            "engine": body.engine,
            "model": body.model,
            "replicas": [s.backend for s in answer.statuses],
        }

    async def pull(self, body: PullRequest, http_request: Request) -> StreamingResponse | JSONResponse:
        request = body.to_proto()
        connection = self.connection
        call = connection.control.PullModel(request, timeout=self.settings.pull_timeout_s, metadata=connection.metadata)
        calls = Calls([call])
        if body.stream:
            await calls.opening(None)  # every error before the first progress is a plain HTTP error
            return sse_response(calls, _progress_events(calls), None)
        last: dict[str, control_pb2.PullProgress] = {}

        async def gather() -> None:
            async for message in calls.messages(0):
                last[message.progress.backend] = message.progress

        await calls.whole(http_request, gather())
        done = [p for p in last.values() if p.state == control_pb2.PULL_STATE_DONE]
        if not done:
            raise ApiError(503, "the pull ended without finishing")
        return JSONResponse(
            {
                "status": "success",
                "model": done[0].name,
                "engine": ENGINE_NAMES.get(request.engine),
                "model_path": done[0].model_path,
                "revision": done[0].revision,
                "bytes": done[0].bytes_total,
                "replicas": sorted(p.backend for p in done),
            }
        )


async def _progress_events(calls: Calls[control_pb2.PullModelResponse]) -> AsyncIterator[bytes]:
    async for message in calls.messages(0):
        yield sse_bytes(pull_json(message.progress))


def _the_loaded(status: control_pb2.EngineStatus, body: LoadRequest) -> control_pb2.ModelStatus | None:
    """The model a load loaded, out of everything its engine holds: by the name asked for, or
    by its path (the status's ``model`` is the most recent request's model, maybe another)."""
    assert body.model_path is not None
    wanted = body.served_model_name or canonical(body.model_path)
    path = body.model_path.removeprefix(HF_PREFIX)
    for model in status.models:
        if model.name == wanted or wanted in model.aliases:
            return model
    for model in status.models:
        if model.model_path == path or model.model_path.endswith("/" + path):
            return model
    return status.models[0] if status.models else None
