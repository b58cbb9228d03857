"""The vLLM engine: the ``Engine`` protocol over one in-process vLLM v1 ``AsyncLLM``.

Engine construction and shutdown block for seconds, so they run off the event loop
(``asyncio.to_thread``); requests in flight are aborted before a shutdown so that no stream
hangs. Load figures come from vLLM's scheduler stats through a stat logger of our own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import vllm
from vllm import SamplingParams
from vllm.platforms import current_platform
from vllm.v1.engine.async_llm import AsyncLLM
from vllm.v1.metrics.loggers import StatLoggerBase

from services.engine_vllm import convert
from services.engine_vllm.settings import VllmSettings
from switchyard.engine.model_roots import list_model_entries, resolve_model_path
from switchyard.engine.params import ChatParams, GenerationParams, TokenizeParams
from switchyard.engine.protocol import LoadSpec, ModelInfo
from switchyard.engine.status import StatusBoard
from switchyard.engine.timing import RequestClock
from switchyard.errors import FailedPrecondition, InvalidArgument, Unavailable
from switchyard.v1 import common_pb2, control_pb2, inference_pb2

logger = logging.getLogger(__name__)


class SchedulerFigures(StatLoggerBase):  # type: ignore[misc]
    """Keeps the latest scheduler stats vLLM reports (running, waiting, KV-cache use)."""

    latest: Any = None

    def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
        pass

    def record(
        self, scheduler_stats: Any, iteration_stats: Any, mm_cache_stats: Any = None, engine_idx: int = 0
    ) -> None:
        if scheduler_stats is not None:
            SchedulerFigures.latest = scheduler_stats

    def log_engine_initialized(self) -> None:
        pass


class VllmEngine:
    kind = common_pb2.ENGINE_VLLM

    def __init__(self, settings: VllmSettings) -> None:
        self.settings = settings
        self.device = current_platform.device_type or "cpu"
        self.board = StatusBoard(self.kind, f"vllm {vllm.__version__}")
        self._engine: Any = None  # an AsyncLLM while a model is loaded
        self._model: ModelInfo | None = None
        self._spec: LoadSpec | None = None
        self._lock = asyncio.Lock()
        self._in_flight: set[str] = set()
        self._monitor: asyncio.Task[None] | None = None

    @property
    def model(self) -> ModelInfo | None:
        return self._model

    # --- lifecycle ------------------------------------------------------------------------

    def prepare_load(self, request: control_pb2.LoadModelRequest) -> LoadSpec:
        path = resolve_model_path(request.model_path, self.settings.model_roots)
        if not convert.is_hf_model_dir(path):
            raise InvalidArgument(f"{request.model_path} is not a Hugging Face model folder (config.json + weights)")
        name = request.served_model_name or path.name
        # Options are checked now so that bad ones fail before the current model is stopped.
        self._engine_args(path, name, request)
        return LoadSpec(path=path, served_name=name, request=request)

    def _engine_args(self, path: Path, name: str, request: control_pb2.LoadModelRequest) -> Any:
        on_cpu = self.device == "cpu"
        return convert.engine_args(path, name, request.vllm, on_cpu, self.settings.cpu_kv_cache_bytes)

    async def load(self, spec: LoadSpec) -> None:
        async with self._lock:
            self.board.mark_loading(
                spec.served_name, str(spec.path), "stopping the previous model" if self._engine else "starting"
            )
            await self._stop_engine()
            self._spec = spec
            self.board.update(load_progress=0.1, load_message="building the vLLM engine")
            args = self._engine_args(spec.path, spec.served_name, spec.request)
            try:
                engine = await asyncio.to_thread(AsyncLLM.from_engine_args, args, stat_loggers=[SchedulerFigures])
            except Exception as exc:  # vLLM raises many types for a model it cannot load
                logger.exception("vLLM failed to load %s", spec.path)
                self.board.update(
                    state=control_pb2.MODEL_STATE_ERROR, error=f"{type(exc).__name__}: {exc}", process_alive=False
                )
                raise FailedPrecondition(f"loading {spec.served_name} failed: {type(exc).__name__}: {exc}") from exc
            self._engine = engine
            tokenizer = engine.get_tokenizer()
            max_len = int(engine.model_config.max_model_len)
            self._model = ModelInfo(name=spec.served_name, vocab_size=len(tokenizer), max_model_len=max_len)
            self.board.update(load_progress=0.9, load_message="warming up")
            await self._warm_up(engine)
            SchedulerFigures.latest = None
            self.board.update(
                state=control_pb2.MODEL_STATE_LOADED,
                load_progress=1.0,
                load_message="loaded",
                process_alive=True,
                max_model_len=max_len,
                device=self.device,
            )
            self._monitor = asyncio.create_task(self._watch(engine), name="watch vllm")

    @staticmethod
    async def _warm_up(engine: Any) -> None:
        """One short request, so the first user's request does not pay for lazy kernel setup
        (about 20 s on CPU here)."""
        sampling = SamplingParams(max_tokens=2, ignore_eos=True, temperature=0.0)
        ids = engine.get_tokenizer().encode("Hello")
        async for _ in engine.generate({"prompt_token_ids": ids}, sampling, "switchyard-warm-up"):
            pass

    async def unload(self) -> None:
        async with self._lock:
            await self._stop_engine()
            self._spec = None
            self.board.mark_idle()

    async def shutdown(self) -> None:
        await self.unload()

    async def _stop_engine(self) -> None:
        """Abort requests in flight (their streams end ABORTED), then shut vLLM down off-loop."""
        engine, self._engine, self._model = self._engine, None, None
        if self._monitor is not None:
            self._monitor.cancel()
            self._monitor = None
        if engine is None:
            return
        if self._in_flight:
            await engine.abort(list(self._in_flight))
        await asyncio.to_thread(engine.shutdown)
        self.board.update(process_alive=False)

    async def _watch(self, engine: Any) -> None:
        """Refresh load figures and notice a dead engine core."""
        while True:
            if self._engine is not engine:
                return
            if engine.errored:
                self.board.update(
                    state=control_pb2.MODEL_STATE_ERROR,
                    error=f"vLLM engine died: {engine.dead_error}",
                    process_alive=False,
                    load=control_pb2.Load(),
                )
                return
            await self.refresh_load()
            await asyncio.sleep(self.settings.status_poll_s)  # polling interval

    async def refresh_load(self) -> None:
        engine = self._engine
        if engine is None:
            return
        stats = SchedulerFigures.latest
        # Scheduler stats arrive only with engine steps; an abort that leaves vLLM idle sends
        # none, so the frontend's count of unfinished requests bounds them.
        unfinished = engine.output_processor.get_num_unfinished_requests()
        running = min(stats.num_running_reqs if stats else 0, unfinished)
        waiting = min(stats.num_waiting_reqs if stats else 0, unfinished - running)
        self.board.update(
            load=control_pb2.Load(
                running_requests=running,
                waiting_requests=waiting,
                kv_cache_usage=float(stats.kv_cache_usage) if stats and unfinished else 0.0,
            )
        )

    # --- inference ------------------------------------------------------------------------

    def _require(self) -> tuple[AsyncLLM, ModelInfo]:
        engine, model = self._engine, self._model
        if engine is None or model is None:
            raise Unavailable("the vLLM engine is not running")
        if engine.errored:
            raise Unavailable(f"the vLLM engine died: {engine.dead_error}")
        return engine, model

    def _chat_ids(self, engine: AsyncLLM, chat: ChatParams) -> list[int]:
        """The model's own chat template, tokenized as the template says (BOS included)."""
        tokenizer = engine.get_tokenizer()
        if not getattr(tokenizer, "chat_template", None):
            raise InvalidArgument("the loaded model has no chat template")
        rendered = tokenizer.apply_chat_template(
            chat.messages,
            tools=chat.tools or None,
            add_generation_prompt=chat.add_generation_prompt,
            tokenize=True,
        )
        if isinstance(rendered, Mapping):
            rendered = rendered["input_ids"]
        return [int(t) for t in rendered]

    def _prompt_ids(self, engine: AsyncLLM, params: GenerationParams) -> list[int]:
        if params.chat is not None:
            return self._chat_ids(engine, params.chat)
        if params.prompt_token_ids is not None:
            return list(params.prompt_token_ids)
        assert params.prompt is not None
        return [int(t) for t in engine.get_tokenizer().encode(params.prompt, add_special_tokens=True)]

    async def generate(self, params: GenerationParams) -> AsyncIterator[inference_pb2.GenerateResponse]:
        timing = RequestClock()
        engine, model = self._require()
        ids = self._prompt_ids(engine, params)
        sampling = convert.sampling_params(params, len(ids), model.max_model_len)
        rid = params.request_id
        self._in_flight.add(rid)
        completion_tokens = 0
        finish: tuple[str | None, int | str | None] = (None, None)
        cached = 0
        queue_ms: float | None = None  # from vLLM's own queued/scheduled timestamps
        timing.started()  # handed to vLLM; its own stats give the queue time when present
        try:
            async for out in engine.generate({"prompt_token_ids": ids}, sampling, rid):
                cached = out.num_cached_tokens or cached
                if out.metrics is not None and out.metrics.scheduled_ts:
                    queue_ms = max(0.0, (out.metrics.scheduled_ts - out.metrics.queued_ts) * 1000.0)
                completion = out.outputs[0]
                new_ids = list(completion.token_ids)
                if new_ids:
                    timing.token()
                    completion_tokens += len(new_ids)
                delta = inference_pb2.Delta(text=completion.text)
                if params.return_token_ids:
                    delta.token_ids.extend(new_ids)
                if params.logprobs is not None and completion.logprobs is not None:
                    delta.logprobs.extend(convert.logprobs_to_proto(new_ids, completion.logprobs, params.logprobs))
                if delta.text or delta.token_ids or delta.logprobs:
                    yield inference_pb2.GenerateResponse(delta=delta)
                if completion.finish_reason is not None:
                    finish = (completion.finish_reason, completion.stop_reason)
        except asyncio.CancelledError:
            await engine.abort(rid)  # the caller went away: free the sequence at once
            raise
        finally:
            self._in_flight.discard(rid)
        usage = inference_pb2.Usage(prompt_tokens=len(ids), completion_tokens=completion_tokens, cached_tokens=cached)
        finished = convert.finished_to_proto(*finish, usage)
        if finish[0] is None:  # the stream ended without a reason: aborted by an unload
            finished.reason = inference_pb2.FINISH_REASON_ABORTED
        finished.model = model.name
        finished.timings.CopyFrom(timing.timings(queue_ms))
        yield inference_pb2.GenerateResponse(finished=finished)

    async def tokenize(self, params: TokenizeParams) -> inference_pb2.TokenizeResponse:
        engine, model = self._require()
        tokenizer = engine.get_tokenizer()
        if params.chat is not None:
            ids = self._chat_ids(engine, params.chat)
        else:
            ids = [int(t) for t in tokenizer.encode(params.text, add_special_tokens=params.add_special_tokens)]
        response = inference_pb2.TokenizeResponse(token_ids=ids, max_model_len=model.max_model_len)
        if params.return_pieces:
            response.pieces.extend(tokenizer.decode([t]) for t in ids)
        return response

    async def detokenize(self, token_ids: list[int]) -> str:
        engine, _ = self._require()
        text: str = engine.get_tokenizer().decode(token_ids)
        return text

    def list_models(self) -> list[control_pb2.ModelEntry]:
        loaded = self._spec.path if self._spec else None
        return list_model_entries(self.settings.model_roots, self.kind, convert.is_hf_model_dir, loaded)
