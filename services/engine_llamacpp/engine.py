"""The llama.cpp engine: the ``Engine`` protocol over a ``llama-server`` child process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.engine_llamacpp import convert
from services.engine_llamacpp.process import ChildExited, LlamaServerProcess
from services.engine_llamacpp.settings import LlamacppSettings
from switchyard.engine.model_roots import list_model_entries, resolve_model_path
from switchyard.engine.params import ChatParams, GenerationParams, TokenizeParams
from switchyard.engine.protocol import LoadSpec, ModelInfo
from switchyard.engine.status import StatusBoard
from switchyard.engine.timing import RequestClock
from switchyard.errors import (
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
)
from switchyard.v1 import common_pb2, control_pb2, inference_pb2

logger = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
# Log lines llama-server prints while loading, mapped to coarse progress for LoadModel events.
LOAD_MARKERS = (
    ("llama_model_loader: loaded meta data", 0.2, "reading model metadata"),
    ("load_tensors:", 0.4, "loading tensors"),
    ("llama_context:", 0.7, "creating context"),
    ("main: model loaded", 0.95, "warming up"),
)


def _is_gguf(path: Path) -> bool:
    with contextlib.suppress(OSError), path.open("rb") as f:
        return f.read(4) == GGUF_MAGIC
    return False


class LlamaCppEngine:
    kind = common_pb2.ENGINE_LLAMACPP

    def __init__(self, settings: LlamacppSettings, binary: Path, version: str) -> None:
        self.settings = settings
        self.binary = binary
        self.board = StatusBoard(self.kind, version)
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(None, connect=5.0),
            limits=httpx.Limits(max_connections=1024, max_keepalive_connections=64),
        )
        self._lock = asyncio.Lock()  # owns every child transition (start, stop, restart)
        self._proc: LlamaServerProcess | None = None
        self._spec: LoadSpec | None = None
        self._model: ModelInfo | None = None
        self._open: dict[str, httpx.Response] = {}
        self._aborted: set[str] = set()
        self._crashes: deque[float] = deque()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def model(self) -> ModelInfo | None:
        return self._model

    # --- lifecycle ------------------------------------------------------------------------

    def prepare_load(self, request: control_pb2.LoadModelRequest) -> LoadSpec:
        path = resolve_model_path(request.model_path, self.settings.model_roots)
        if path.is_dir():
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) != 1:
                raise InvalidArgument(f"{request.model_path} is a folder, not a GGUF file")
            path = ggufs[0]
        if not _is_gguf(path):
            raise InvalidArgument(f"{request.model_path} is not a GGUF file")
        # Flags are checked now so that bad options fail before the current model is stopped.
        convert.server_args(path, "x", request.llamacpp, self.settings.ctx_size, self.settings.parallel)
        name = request.served_model_name or path.stem
        return LoadSpec(path=path, served_name=name, request=request)

    async def load(self, spec: LoadSpec) -> None:
        async with self._lock:
            self.board.mark_loading(
                spec.served_name,
                str(spec.path),
                "stopping the previous model" if self._proc else "starting",
            )
            await self._stop_child()
            self._spec = spec
            self._crashes.clear()
            await self._start_child(spec)

    async def unload(self) -> None:
        async with self._lock:
            await self._stop_child()
            self._spec = None
            self.board.mark_idle()

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.unload()
        await self._http.aclose()

    async def _start_child(self, spec: LoadSpec) -> None:
        """Spawn llama-server for ``spec`` and wait for it; caller holds the lock."""
        args = convert.server_args(
            spec.path,
            spec.served_name,
            spec.request.llamacpp,
            self.settings.ctx_size,
            self.settings.parallel,
        )
        proc = LlamaServerProcess(self.binary, args, on_log=self._on_load_log)
        self._proc = proc
        self.board.update(load_progress=0.1, load_message="starting llama-server")
        try:
            await proc.start(self._http, self.settings.startup_timeout_s)
            self._model = await self._read_model_info(proc, spec.served_name)
        except (ChildExited, TimeoutError, httpx.HTTPError, KeyError, ValueError) as exc:
            await proc.stop(self.settings.stop_grace_s)
            self._proc = None
            self._model = None
            reason = str(exc) or f"llama-server did not become healthy ({type(exc).__name__})"
            if not isinstance(exc, ChildExited):
                reason += "\n" + proc.last_log()
            self.board.update(
                state=control_pb2.MODEL_STATE_ERROR,
                error=reason,
                process_alive=False,
                load_progress=0.0,
                load_message="",
            )
            raise FailedPrecondition(f"loading {spec.served_name} failed: {reason}") from exc
        proc.on_log = None
        self.board.update(
            state=control_pb2.MODEL_STATE_LOADED,
            load_progress=1.0,
            load_message="loaded",
            process_alive=True,
            max_model_len=self._model.max_model_len,
            device="cuda" if any("CUDA" in line for line in proc.log_tail) else "cpu",
        )
        self._spawn(self._watch_child(proc), "watch llama-server")
        self._spawn(self._poll_load(proc), "poll llama-server load")

    def _on_load_log(self, line: str) -> None:
        for marker, progress, message in LOAD_MARKERS:
            if marker in line and progress > self.board.status.load_progress:
                self.board.update(load_progress=progress, load_message=message)

    async def _read_model_info(self, proc: LlamaServerProcess, name: str) -> ModelInfo:
        props = (await self._http.get(f"{proc.base_url}/props")).raise_for_status().json()
        models = (await self._http.get(f"{proc.base_url}/v1/models")).raise_for_status().json()
        n_ctx = int(props["default_generation_settings"]["n_ctx"])
        return ModelInfo(name=name, vocab_size=int(models["data"][0]["meta"]["n_vocab"]), max_model_len=n_ctx)

    async def _stop_child(self) -> None:
        """End open streams (they finish as ABORTED), then stop the child; caller holds the lock."""
        proc, self._proc, self._model = self._proc, None, None
        if proc is None:
            return
        proc.stopping = True
        for request_id, response in list(self._open.items()):
            self._aborted.add(request_id)
            await response.aclose()
        await proc.stop(self.settings.stop_grace_s)
        self.board.update(process_alive=False)

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch_child(self, proc: LlamaServerProcess) -> None:
        """See a crash at once: status ERROR, then restart per policy with the same model."""
        code = await proc.wait_exit()
        if proc.stopping:
            return
        async with self._lock:
            if self._proc is not proc:
                return
            self._proc, self._model = None, None
            await proc.stop(0)  # collect the log tail
            error = f"llama-server exited unexpectedly (code {code}):\n{proc.last_log()}"
            logger.error("%s", error)
            self.board.update(
                state=control_pb2.MODEL_STATE_ERROR,
                error=error,
                process_alive=False,
                load=control_pb2.Load(),
            )
            now = time.monotonic()
            self._crashes.append(now)
            while self._crashes and now - self._crashes[0] > self.settings.restart_window_s:
                self._crashes.popleft()
            if not self.settings.restart_on_crash or self._spec is None:
                return
            if len(self._crashes) > self.settings.max_restarts:
                self.board.update(error=error + "\n(restart limit reached; load again to retry)")
                return
            spec = self._spec
        delay = self.settings.restart_backoff_s * 2 ** (len(self._crashes) - 1)
        await asyncio.sleep(delay)  # back-off between restarts, not synchronisation
        async with self._lock:
            if self._spec is not spec or self._proc is not None:
                return  # a load or unload happened meanwhile
            self.board.update(state=control_pb2.MODEL_STATE_LOADING, load_message="restarting")
            with contextlib.suppress(FailedPrecondition):
                await self._start_child(spec)

    async def _poll_load(self, proc: LlamaServerProcess) -> None:
        while proc is self._proc and proc.alive:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                await self._refresh_from(proc)
            await asyncio.sleep(self.settings.status_poll_s)  # polling interval

    async def refresh_load(self) -> None:
        proc = self._proc
        if proc is not None and proc.alive and self._model is not None:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                await self._refresh_from(proc)

    async def _refresh_from(self, proc: LlamaServerProcess) -> None:
        response = await self._http.get(f"{proc.base_url}/metrics", timeout=5.0)
        figures: dict[str, float] = {}
        for family in text_string_to_metric_families(response.raise_for_status().text):
            for sample in family.samples:
                figures[sample.name] = sample.value
        if proc is self._proc:
            self.board.update(
                load=control_pb2.Load(
                    running_requests=int(figures.get("llamacpp:requests_processing", 0)),
                    waiting_requests=int(figures.get("llamacpp:requests_deferred", 0)),
                )
            )

    # --- inference ------------------------------------------------------------------------

    def _require(self) -> LlamaServerProcess:
        proc = self._proc
        if proc is None or not proc.alive or self._model is None:
            raise Unavailable("llama-server is not running")
        return proc

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        proc = self._require()
        try:
            response = await self._http.post(f"{proc.base_url}{path}", json=body)
        except httpx.TransportError as exc:
            raise Unavailable(f"llama-server connection failed: {exc!r}") from exc
        if response.status_code != 200:
            raise convert.error_from_response(response.status_code, response.content)
        return response.json()

    async def _render_chat(self, chat: ChatParams) -> str:
        body: dict[str, Any] = {
            "messages": chat.messages,
            "add_generation_prompt": chat.add_generation_prompt,
        }
        if chat.tools:
            body["tools"] = chat.tools
        prompt: str = (await self._post("/apply-template", body))["prompt"]
        return prompt

    async def generate(self, params: GenerationParams) -> AsyncIterator[inference_pb2.GenerateResponse]:
        if params.min_tokens:
            raise InvalidArgument("min_tokens is not supported by the llamacpp engine")
        timing = RequestClock()
        if params.chat is not None:
            prompt: str | list[int] = await self._render_chat(params.chat)
        else:
            prompt = params.prompt if params.prompt is not None else list(params.prompt_token_ids or [])
        proc = self._require()
        body = convert.completion_body(params, prompt)
        rid = params.request_id
        stream = convert.CompletionStream(params)
        try:
            async with self._http.stream("POST", f"{proc.base_url}/completion", json=body) as response:
                timing.started()
                if response.status_code != 200:
                    raise convert.error_from_response(response.status_code, await response.aread())
                self._open[rid] = response
                async for batch in convert.sse_batches(response.aiter_raw()):
                    delta = stream.take(batch)
                    if stream.tokens_seen:
                        timing.token()
                    if delta is not None:
                        yield inference_pb2.GenerateResponse(delta=delta)
                    if stream.finished is not None:
                        break
        except (httpx.TransportError, httpx.StreamClosed) as exc:
            if rid not in self._aborted:
                raise Unavailable(f"llama-server connection lost: {type(exc).__name__}") from exc
            stream.finished = convert.finished_aborted(stream.last)
        finally:
            self._open.pop(rid, None)
            self._aborted.discard(rid)
        if stream.finished is None:
            raise Unavailable("llama-server ended the stream without a final chunk")
        finished = stream.finished
        finished.model = self._spec.served_name if self._spec else ""
        finished.timings.CopyFrom(timing.timings())
        yield inference_pb2.GenerateResponse(finished=finished)

    async def tokenize(self, params: TokenizeParams) -> inference_pb2.TokenizeResponse:
        text = await self._render_chat(params.chat) if params.chat is not None else params.text
        answer = await self._post(
            "/tokenize",
            {
                "content": text,
                "add_special": params.add_special_tokens,
                "with_pieces": params.return_pieces,
            },
        )
        response = inference_pb2.TokenizeResponse(max_model_len=self._model.max_model_len if self._model else 0)
        for token in answer["tokens"]:
            if isinstance(token, dict):
                piece = token["piece"]
                response.token_ids.append(token["id"])
                response.pieces.append(piece if isinstance(piece, str) else bytes(piece).decode(errors="replace"))
            else:
                response.token_ids.append(token)
        return response

    async def detokenize(self, token_ids: list[int]) -> str:
        text: str = (await self._post("/detokenize", {"tokens": token_ids}))["content"]
        return text

    def list_models(self) -> list[control_pb2.ModelEntry]:
        loaded = self._spec.path if self._spec else None
        return list_model_entries(
            self.settings.model_roots, self.kind, lambda p: p.suffix == ".gguf" and _is_gguf(p), loaded
        )
