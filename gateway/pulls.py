"""POST /v1/models/pull through the router: progress as server-sent events, or one answer when
the pull is done. A client that goes away cancels the pull (once no other caller waits for it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from gateway.connection import Router
from gateway.errors import ApiError, from_rpc_error, sse_error
from gateway.generation import DONE, first_message, until_disconnect
from gateway.responses import sse_bytes
from switchyard.engines import ENGINE_NAMES
from switchyard.v1 import control_pb2

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


async def pull_response(
    connection: Router,
    request: control_pb2.PullModelRequest,
    stream: bool,
    timeout: float,
    http_request: Request,
) -> StreamingResponse | JSONResponse:
    call = connection.control.PullModel(request, timeout=timeout, metadata=connection.metadata)
    if stream:
        try:
            first = await first_message(call)
        except BaseException:
            call.cancel()
            raise

        async def events() -> AsyncIterator[bytes]:
            try:
                message = first
                while message is not None:
                    yield sse_bytes(pull_json(message.progress))
                    read: Any = await call.read()
                    message = None if read is grpc.aio.EOF else read
                yield DONE
            except grpc.aio.AioRpcError as exc:
                yield sse_error(from_rpc_error(exc)).encode()
            finally:
                call.cancel()  # a no-op when done; otherwise the client left: the pull may stop

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    last: dict[str, control_pb2.PullProgress] = {}

    async def gather() -> None:
        async for message in call:
            last[message.progress.backend] = message.progress

    work = asyncio.ensure_future(gather())
    gone = asyncio.ensure_future(until_disconnect(http_request))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not work.done():
            work.cancel()
            call.cancel()
    if not work.done() or work.cancelled():
        raise ApiError(499, "client disconnected")
    try:
        work.result()
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from None
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
