"""The vLLM engine: each model is one in-process vLLM v1 ``AsyncLLM``.

Engine construction and shutdown block for seconds, so they run off the event loop
(``asyncio.to_thread``). Each model's processes (engine core, workers) are the children that
appeared while it was built, so a stop can wait until exactly those are gone. Occupancy comes
from vLLM's scheduler stats through a stat logger of our own, one per model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

import psutil
import vllm
from prometheus_client.metrics_core import Metric
from vllm import PoolingParams, SamplingParams
from vllm.exceptions import VLLMValidationError
from vllm.platforms import current_platform
from vllm.v1.engine.async_llm import AsyncLLM
from vllm.v1.metrics.loggers import StatLoggerBase

from services.engine_vllm import convert, parsing
from services.engine_vllm.grammar import GrammarCheck
from services.engine_vllm.processes import EngineProcesses
from services.engine_vllm.settings import VllmSettings
from switchyard.engine.params import ChatParams, EmbedParams, GenerationParams, TokenizeParams
from switchyard.engine.protocol import LoadSpec, ModelInfo, Progress
from switchyard.engine.timing import RequestClock
from switchyard.engine.tool_calls import forced
from switchyard.errors import EngineError, FailedPrecondition, InvalidArgument, Unavailable
from switchyard.runtime import tracing
from switchyard.runtime.reaper import Reaper
from switchyard.token_bytes import bytes_of_tokens
from switchyard.v1 import common_pb2, control_pb2, inference_pb2

logger = logging.getLogger(__name__)
# Inputs larger than this are tokenized in a worker thread, so a huge prompt cannot stall every
# other call to the service (status included); small ones stay inline, where a thread hop
# would cost more than the tokenizing.
OFFLOAD_CHARS = 16 * 1024
T = TypeVar("T")


class SchedulerFigures:
    """The latest scheduler stats vLLM reported for one model (running, waiting, KV-cache use)."""

    def __init__(self) -> None:
        self.latest: Any = None

    def logger_factory(self, vllm_config: Any, engine_index: int = 0) -> StatLoggerBase:
        figures = self

        class Recorder(StatLoggerBase):  # type: ignore[misc]
            def __init__(self) -> None:
                pass

            def record(
                self, scheduler_stats: Any, iteration_stats: Any, mm_cache_stats: Any = None, engine_idx: int = 0
            ) -> None:
                if scheduler_stats is not None:
                    figures.latest = scheduler_stats

            def log_engine_initialized(self) -> None:
                pass

        return Recorder()


def _chat_chars(chat: ChatParams | None) -> int:
    return sum(len(m.get("content", "")) for m in chat.messages) if chat is not None else 0


def _input_chars(params: GenerationParams) -> int:
    return len(params.prompt or "") + len(params.prompt_token_ids or ()) + _chat_chars(params.chat)


# Not a model's: our own helpers, and Python's multiprocessing resource tracker, which the first
# load starts and which lives as long as this service (waiting for it to exit cost every
# unload its 30 s stop timeout, then killing it made Python relaunch it).
HELPERS = ("switchyard.engine.pull_worker", "switchyard.runtime.reaper", "multiprocessing.resource_tracker")


def _belongs(process: psutil.Process) -> bool:
    """Whether a new descendant of this service is a model's, not one of our own helpers."""
    return not any(helper in " ".join(process.cmdline()) for helper in HELPERS)


def _load_failure(name: str, exc: Exception, processes: EngineProcesses) -> EngineError:
    """A load vLLM gave up on: UNAVAILABLE when a process of the engine was killed (the engine
    failed, a retry may do), FAILED_PRECONDITION when vLLM refused the model; either way with
    what died and the last error line of the engine's log."""
    cause = processes.cause()
    if processes.killed():
        return Unavailable(f"loading {name} failed: the vLLM engine failed: {cause}")
    return FailedPrecondition(f"loading {name} failed: {type(exc).__name__}: {exc}" + (f"; {cause}" if cause else ""))


def _join_spawned(pids: set[int], timeout_s: float) -> None:
    """Join, through multiprocessing, the engine processes this service spawned. vLLM's
    shutdown SIGKILLs an engine core that outlives its grace period without joining it; once
    anyone else reaps it (our stop waits on it with psutil), multiprocessing thinks it alive
    for good and keeps its two pipes open: two file descriptors leaked per such unload."""
    deadline = time.monotonic() + timeout_s
    for child in multiprocessing.active_children():
        if child.pid in pids:
            child.join(max(0.0, deadline - time.monotonic()))
            if child.exitcode is not None:
                child.close()


def _kill(processes: list[psutil.Process]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(processes, timeout=10)


class VllmAdapter:
    kind = common_pb2.ENGINE_VLLM

    def __init__(self, settings: VllmSettings, reaper: Reaper | None = None) -> None:
        self.settings = settings
        self.reaper = reaper  # kills the model's processes if this service is killed
        self.device = current_platform.device_type or "cpu"
        self.version = f"vllm {vllm.__version__}"

    def is_model(self, path: Path) -> bool:
        return convert.is_hf_model_dir(path)

    def model_path(self, path: Path, shown: str) -> Path:
        if not convert.is_hf_model_dir(path):
            raise InvalidArgument(f"{shown} is not a Hugging Face model folder (config.json + weights)")
        return path

    def launch_args(self, path: Path, name: str, request: control_pb2.LoadModelRequest) -> Any:
        parsing.check_names(request)
        on_cpu = self.device == "cpu"
        settings = self.settings
        return convert.engine_args(
            path,
            name,
            request,
            on_cpu,
            settings.cpu_kv_cache_bytes,
            settings.default_dtype,
            otlp_traces_endpoint=settings.otlp_traces_endpoint,
        )

    async def launch(self, spec: LoadSpec, progress: Progress) -> VllmModel:
        """Build the engine; its processes are the ones that appeared meanwhile (loads run one
        at a time, and the service's own helpers are told apart)."""
        progress(0.1, "building the vLLM engine")
        figures = SchedulerFigures()
        processes = EngineProcesses(spec.name, _belongs)
        try:
            engine = await processes.build(
                lambda: AsyncLLM.from_engine_args(spec.launch, stat_loggers=[figures.logger_factory])
            )
        except Exception as exc:  # vLLM raises many types for a model it cannot load
            logger.exception("vLLM failed to load %s", spec.path)
            error = _load_failure(spec.name, exc, processes)  # before the rest is killed
            await asyncio.to_thread(_kill, processes.processes())
            await asyncio.to_thread(processes.close, 5.0)
            raise error from exc
        try:
            if self.reaper is not None:
                self.reaper.watch(p.pid for p in processes.processes())
        except BaseException:
            await asyncio.to_thread(engine.shutdown)
            raise
        embeds = spec.task == control_pb2.MODEL_TASK_EMBED
        model = VllmModel(engine, processes, figures, self.device, self.settings.status_poll_s, embeds)
        model.load_request = spec.request
        return model

    async def close(self) -> None:
        pass


class VllmModel:
    def __init__(
        self,
        engine: AsyncLLM,
        processes: EngineProcesses,
        figures: SchedulerFigures,
        device: str,
        poll_s: float,
        embeds: bool = False,
    ) -> None:
        self.engine = engine
        self.embeds = embeds  # loaded with the pooling runner: encode, never generate
        self.device = device
        self._processes = processes
        self._figures = figures
        self._poll_s = poll_s
        self._in_flight: set[str] = set()
        self._info: ModelInfo | None = None
        self._grammar: GrammarCheck | None = None
        self.load_request = control_pb2.LoadModelRequest()  # its parser names
        self._parsing: parsing.ChatParsing | None = None
        self._token_bytes: Callable[[int], bytes] = lambda token_id: b""

    def processes(self) -> list[psutil.Process]:
        return self._processes.processes()

    async def ready(self, progress: Progress) -> ModelInfo:
        tokenizer = self.engine.get_tokenizer()
        if not self.embeds:
            self._parsing = parsing.ChatParsing.for_model(tokenizer, self.engine.model_config, self.load_request)
        decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
        self._token_bytes = bytes_of_tokens(tokenizer.convert_ids_to_tokens, type(decoder).__name__ == "ByteLevel")
        self._info = ModelInfo(
            vocab_size=len(tokenizer),
            max_model_len=int(self.engine.model_config.max_model_len),
            tool_parser=self._parsing.tool_parser if self._parsing else "",
            reasoning_parser=self._parsing.reasoning_parser if self._parsing else "",
        )
        self._grammar = GrammarCheck(
            tokenizer,
            self.engine.model_config.get_vocab_size(),
            convert.STRUCTURED_OUTPUTS.disable_any_whitespace,
            convert.STRUCTURED_OUTPUTS.disable_additional_properties,
        )
        progress(0.9, "warming up")
        try:
            await self._unless_dead(self._warm_up(tokenizer.encode("Hello")))
        except Exception as exc:  # the first run of the kernels: where a worker dies, it is here
            if not self._dead():
                raise
            cause = await self._processes.settled_cause() or str(self.engine.dead_error)
            raise Unavailable(f"loading failed: the vLLM engine failed while warming up: {cause}") from exc
        self._figures.latest = None
        return self._info

    def _dead(self) -> bool:
        return bool(self.engine.errored) or self._processes.died()

    async def _unless_dead(self, work: Coroutine[Any, Any, None]) -> None:
        """``work``, given up once the engine has died: a request in flight when the engine core
        dies can otherwise wait for ever (vLLM's process monitor may shut the client down
        before the death message from the engine core is read)."""
        task = asyncio.ensure_future(work)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=self._poll_s)
                if not task.done() and self._dead():
                    raise Unavailable(f"the vLLM engine failed: {self.engine.dead_error}")
            task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=5.0)  # vLLM's own abort of the request, if it can
                if task.done() and not task.cancelled():
                    task.exception()  # seen: its failure is the engine's, reported by the caller

    async def _warm_up(self, ids: list[int]) -> None:
        """One short request, so the first user's request does not pay for lazy kernel setup
        (about 20 s on CPU here)."""
        if self.embeds:
            await self._encode(ids, "switchyard-warm-up")
        else:
            sampling = SamplingParams(max_tokens=2, ignore_eos=True, temperature=0.0)
            async for _ in self.engine.generate({"prompt_token_ids": ids}, sampling, "switchyard-warm-up"):
                pass

    async def failed(self) -> str:
        while not self._dead():  # noqa: ASYNC110 (vLLM offers no event for its death)
            await asyncio.sleep(self._poll_s)
        cause = await self._processes.settled_cause()
        return f"the vLLM engine failed: {cause or self.engine.dead_error}"

    def engine_metrics(self) -> list[Metric]:
        return []  # vLLM's PrometheusStatLogger registers its vllm: families in this process

    async def occupancy(self) -> control_pb2.Load:
        stats = self._figures.latest
        # Scheduler stats arrive only with engine steps; an abort that leaves vLLM idle sends
        # none, so the frontend's count of unfinished requests bounds them.
        unfinished = self.engine.output_processor.get_num_unfinished_requests()
        running = min(stats.num_running_reqs if stats else 0, unfinished)
        waiting = min(stats.num_waiting_reqs if stats else 0, unfinished - running)
        return control_pb2.Load(
            running_requests=running,
            waiting_requests=waiting,
            kv_cache_usage=float(stats.kv_cache_usage) if stats and unfinished else 0.0,
        )

    async def stop(self) -> None:
        """Abort requests in flight (their streams end ABORTED), then shut vLLM down off-loop."""
        if self._in_flight:
            await self.engine.abort(list(self._in_flight))
        await asyncio.to_thread(self.engine.shutdown)
        await asyncio.to_thread(_join_spawned, {p.pid for p in self._processes.watch.processes()}, 10.0)
        await asyncio.to_thread(self._processes.close, 5.0)

    # --- inference ------------------------------------------------------------------------

    def _check_alive(self) -> None:
        if self.engine.errored:
            raise Unavailable(f"the vLLM engine failed: {self._processes.cause() or self.engine.dead_error}")

    def _chat_ids(self, chat: ChatParams) -> list[int]:
        """The model's own chat template, tokenized as the template says (BOS included)."""
        tokenizer = self.engine.get_tokenizer()
        if not getattr(tokenizer, "chat_template", None):
            raise InvalidArgument("the loaded model has no chat template")
        rendered = tokenizer.apply_chat_template(
            chat.messages,
            tools=chat.tools or None,
            add_generation_prompt=chat.add_generation_prompt,
            tokenize=True,
            **chat.template_kwargs,
        )
        if isinstance(rendered, Mapping):
            rendered = rendered["input_ids"]
        return [int(t) for t in rendered]

    def _prompt_ids(self, params: GenerationParams) -> list[int]:
        if params.chat is not None:
            return self._chat_ids(params.chat)
        if params.prompt_token_ids is not None:
            return list(params.prompt_token_ids)
        assert params.prompt is not None
        return [int(t) for t in self.engine.get_tokenizer().encode(params.prompt, add_special_tokens=True)]

    async def _off_loop(self, size: int, work: Callable[[], T]) -> T:
        """``work()``, in a worker thread when the input is large."""
        return await asyncio.to_thread(work) if size > OFFLOAD_CHARS else work()

    async def generate(self, params: GenerationParams) -> AsyncIterator[inference_pb2.GenerateResponse]:
        timing = RequestClock()
        self._check_alive()
        assert self._info is not None
        parser = self._parser_for(params)
        if parser is not None and parser.prompt is not None:
            ids = parser.prompt  # its format renders the prompt (harmony), not the HF template
        else:
            ids = await self._off_loop(_input_chars(params), lambda: self._prompt_ids(params))
        sampling = convert.sampling_params(params, len(ids), self._info.max_model_len)
        if params.constraint is not None and self._grammar is not None:
            await self._grammar.check(params.constraint)
        if parser is not None:
            sampling.skip_special_tokens = parser.skip_special_tokens
        output_ids: list[int] = []
        rid = params.request_id
        self._in_flight.add(rid)
        completion_tokens = 0
        finish: tuple[str | None, int | str | None] = (None, None)
        cached = 0
        queue_ms: float | None = None  # from vLLM's own queued/scheduled timestamps
        timing.started()  # handed to vLLM; its own stats give the queue time when present
        try:
            headers = tracing.trace_headers()  # vLLM's own spans join the request's trace
            async for out in self.engine.generate({"prompt_token_ids": ids}, sampling, rid, trace_headers=headers):
                cached = out.num_cached_tokens or cached
                if out.metrics is not None and out.metrics.scheduled_ts:
                    queue_ms = max(0.0, (out.metrics.scheduled_ts - out.metrics.queued_ts) * 1000.0)
                completion = out.outputs[0]
                new_ids = list(completion.token_ids)
                if new_ids:
                    timing.token()
                    completion_tokens += len(new_ids)
                if parser is None:
                    delta = inference_pb2.Delta(text=completion.text)
                else:
                    output_ids.extend(new_ids)
                    ending = completion.finish_reason is not None
                    delta = parser.delta(completion.text, new_ids, ids, ending)
                if params.return_token_ids:
                    delta.token_ids.extend(new_ids)
                if params.logprobs is not None and completion.logprobs is not None:
                    delta.logprobs.extend(
                        convert.logprobs_to_proto(new_ids, completion.logprobs, params.logprobs, self._token_bytes)
                    )
                if delta.text or delta.reasoning or delta.tool_calls or delta.token_ids or delta.logprobs:
                    yield inference_pb2.GenerateResponse(delta=delta)
                if completion.finish_reason is not None:
                    finish = (completion.finish_reason, completion.stop_reason)
        except asyncio.CancelledError:
            await self.engine.abort(rid)  # the caller went away: free the sequence at once
            raise
        except VLLMValidationError as exc:  # raised before any output: a constraint vLLM cannot compile
            raise InvalidArgument(f"the output constraint was refused: {exc}") from None
        finally:
            self._in_flight.discard(rid)
        usage = inference_pb2.Usage(prompt_tokens=len(ids), completion_tokens=completion_tokens, cached_tokens=cached)
        if parser is not None:
            usage.reasoning_tokens = parser.reasoning_tokens(output_ids)
            if parser.called and finish[0] == "stop":
                finish = ("tool_calls", None)
        finished = convert.finished_to_proto(*finish, usage)
        if finish[0] is None:  # the stream ended without a reason: aborted by a stop
            finished.reason = inference_pb2.FINISH_REASON_ABORTED
        finished.timings.CopyFrom(timing.timings(queue_ms))
        yield inference_pb2.GenerateResponse(finished=finished)

    def _parser_for(self, params: GenerationParams) -> parsing.RequestParsing | None:
        """vLLM's parsers read a chat's reasoning and calls, unless the calls are forced or the
        output constrained (switchyard's own schema then holds the whole answer)."""
        chat = params.chat
        if self._parsing is None or chat is None or forced(chat.plan) or params.constraint is not None:
            return None
        return self._parsing.start(chat)

    async def tokenize(self, params: TokenizeParams) -> inference_pb2.TokenizeResponse:
        self._check_alive()
        tokenizer = self.engine.get_tokenizer()

        def encode() -> list[int]:
            if params.chat is not None:
                return self._chat_ids(params.chat)
            return [int(t) for t in tokenizer.encode(params.text, add_special_tokens=params.add_special_tokens)]

        size = len(params.text or "") + _chat_chars(params.chat)
        ids = await self._off_loop(size, encode)
        max_len = self._info.max_model_len if self._info else 0
        response = inference_pb2.TokenizeResponse(token_ids=ids, max_model_len=max_len)
        if params.return_pieces:
            response.pieces.extend(tokenizer.decode([t]) for t in ids)
        return response

    async def detokenize(self, token_ids: list[int]) -> str:
        self._check_alive()
        text: str = await self._off_loop(len(token_ids), lambda: self.engine.get_tokenizer().decode(token_ids))
        return text

    async def _encode(self, ids: list[int], rid: str) -> list[float]:
        """The pooled vector of one input (vLLM batches concurrent inputs itself)."""
        self._in_flight.add(rid)
        try:
            output = None
            async for final in self.engine.encode({"prompt_token_ids": ids}, PoolingParams(task="embed"), rid):
                output = final  # one output: the pooled vector
        except asyncio.CancelledError:
            await self.engine.abort(rid)
            raise
        finally:
            self._in_flight.discard(rid)
        if output is None:
            raise Unavailable("vLLM returned no embedding")
        values: list[float] = output.outputs.data.tolist()
        return values

    async def embed(self, params: EmbedParams) -> inference_pb2.EmbedResponse:
        self._check_alive()
        assert self._info is not None
        tokenizer = self.engine.get_tokenizer()
        max_len = self._info.max_model_len

        def encode_all() -> list[list[int]]:
            return [tokenizer.encode(x) if isinstance(x, str) else x for x in params.inputs]

        size = sum(len(x) for x in params.inputs)
        inputs = await self._off_loop(size, encode_all)
        for i, ids in enumerate(inputs):
            if len(ids) > max_len:
                raise InvalidArgument(f"inputs[{i}] has {len(ids)} tokens, over the model's {max_len}")
        vectors = await asyncio.gather(*(self._encode(ids, f"{params.request_id}-{i}") for i, ids in enumerate(inputs)))
        response = inference_pb2.EmbedResponse(usage=inference_pb2.Usage(prompt_tokens=sum(len(ids) for ids in inputs)))
        for vector in vectors:
            response.embeddings.add().values.extend(vector)
        return response
