"""The llama.cpp engine: each model is one ``llama-server`` child process on its own port.

``LlamaCppAdapter`` checks loads and launches children; ``LlamaServerModel`` is one running
child: it streams from llama-server's native ``/completion`` endpoint and maps everything to
the contract. The model slots own the state around them (switchyard.engine.slot).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psutil
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from services.engine_llamacpp import chat, convert
from services.engine_llamacpp.budget import TokenBudget
from services.engine_llamacpp.http_stream import StreamingPoster
from services.engine_llamacpp.process import ChildExited, LlamaServerProcess
from services.engine_llamacpp.settings import LlamacppSettings
from services.engine_llamacpp.vocab import tokens_never_in_utf8
from switchyard.engine.hub import is_later_part
from switchyard.engine.params import ChatParams, EmbedParams, GenerationParams, TokenizeParams, openai_messages
from switchyard.engine.protocol import LoadSpec, ModelInfo, Progress
from switchyard.engine.timing import RequestClock
from switchyard.engine.tool_calls import forced
from switchyard.errors import FailedPrecondition, InvalidArgument, Unavailable
from switchyard.v1 import common_pb2, control_pb2, inference_pb2

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


def _http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(None, connect=5.0),
        limits=httpx.Limits(max_connections=1024, max_keepalive_connections=64),
    )


class LlamaCppAdapter:
    kind = common_pb2.ENGINE_LLAMACPP

    def __init__(self, settings: LlamacppSettings, binary: Path, version: str) -> None:
        self.settings = settings
        self.binary = binary
        self.version = version

    def is_model(self, path: Path) -> bool:
        return path.suffix == ".gguf" and not is_later_part(path.name) and _is_gguf(path)

    def model_path(self, path: Path, shown: str) -> Path:
        if path.is_dir():
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) != 1:
                raise InvalidArgument(f"{shown} is a folder, not a GGUF file")
            path = ggufs[0]
        if not _is_gguf(path):
            raise InvalidArgument(f"{shown} is not a GGUF file")
        return path

    def launch_args(self, path: Path, name: str, request: control_pb2.LoadModelRequest) -> list[str]:
        return convert.server_args(path, name, request, self.settings.ctx_size, self.settings.parallel)

    async def launch(self, spec: LoadSpec, progress: Progress) -> LlamaServerModel:
        def on_log(line: str) -> None:
            for marker, fraction, message in LOAD_MARKERS:
                if marker in line:
                    progress(fraction, message)

        progress(0.1, "starting llama-server")
        proc = LlamaServerProcess(self.binary, spec.launch, on_log=on_log)
        await proc.spawn()
        cache_tokens = convert.context_size(spec.request, self.settings.ctx_size)
        model = LlamaServerModel(proc, self.settings, cache_tokens, convert.chat_parsing(spec.request))
        model.banned_under_schema = await asyncio.to_thread(tokens_never_in_utf8, spec.path)
        return model

    async def close(self) -> None:
        pass


class LlamaServerModel:
    """One llama-server child serving one model, with its own HTTP connection pool and its
    own token-stream poster: closing both ends every request to it at once, queued ones
    included."""

    def __init__(
        self, proc: LlamaServerProcess, settings: LlamacppSettings, cache_tokens: int, chat_parsing: bool = True
    ) -> None:
        self.proc = proc
        self.settings = settings
        self.chat_parsing = chat_parsing  # llama-server's chat layer reads calls and reasoning
        self.banned_under_schema: list[int] = []  # tokens no UTF-8 text holds (vocab.py)
        self.budget = TokenBudget(cache_tokens)  # services/engine_llamacpp/budget.py
        self.device = "cpu"
        self._http = _http_client()
        self._streams = StreamingPoster(proc.host, proc.port)
        self._info: ModelInfo | None = None
        self._stopping = False  # stopped on purpose: open streams end ABORTED, not in error
        self._families: list[Metric] = []  # llama-server's own metrics, as last polled

    def processes(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            if self.proc.pid is not None and self.proc.alive:
                return [psutil.Process(self.proc.pid)]
        return []

    async def ready(self, progress: Progress) -> ModelInfo:
        try:
            await self.proc.wait_healthy(self._http, self.settings.startup_timeout_s)
            props = (await self._http.get(f"{self.proc.base_url}/props")).raise_for_status().json()
            models = (await self._http.get(f"{self.proc.base_url}/v1/models")).raise_for_status().json()
            n_ctx = int(props["default_generation_settings"]["n_ctx"])
            caps = props.get("chat_template_caps") or {}
            vocab = int(models["data"][0]["meta"]["n_vocab"])
        except (ChildExited, TimeoutError, httpx.HTTPError, KeyError, ValueError) as exc:
            reason = str(exc) or f"llama-server did not become healthy ({type(exc).__name__})"
            if not isinstance(exc, ChildExited):
                reason += "\n" + self.proc.last_log()
            raise FailedPrecondition(f"loading failed: {reason}") from exc
        self.proc.on_log = None
        self.device = "cuda" if any("CUDA" in line for line in self.proc.log_tail) else "cpu"
        parser = "llama-server" if self.chat_parsing else ""
        tools = parser if caps.get("supports_tool_calls") else ""
        self._info = ModelInfo(vocab_size=vocab, max_model_len=n_ctx, tool_parser=tools, reasoning_parser=parser)
        return self._info

    async def failed(self) -> str:
        code = await self.proc.wait_exit()
        await self.proc.stop(0)  # collect the log tail
        return f"llama-server exited unexpectedly (code {code}):\n{self.proc.last_log()}"

    async def occupancy(self) -> control_pb2.Load:
        figures: dict[str, float] = {}
        with contextlib.suppress(httpx.HTTPError, ValueError):
            response = await self._http.get(f"{self.proc.base_url}/metrics", timeout=5.0)
            families = list(text_string_to_metric_families(response.raise_for_status().text))
            self._families = families  # what this service's /metrics passes on
            for family in families:
                for sample in family.samples:
                    figures[sample.name] = sample.value
        return control_pb2.Load(
            running_requests=int(figures.get("llamacpp:requests_processing", 0)),
            waiting_requests=int(figures.get("llamacpp:requests_deferred", 0)) + self.budget.waiting,
        )

    def engine_metrics(self) -> list[Metric]:
        return self._families

    async def stop(self) -> None:
        self._stopping = self.proc.stopping = True
        self._streams.close()  # every open stream from the child ends now,
        await self._http.aclose()  # and every other open and queued request
        await self.proc.stop(self.settings.stop_grace_s)

    # --- inference ------------------------------------------------------------------------

    def _lost(self, exc: Exception) -> Unavailable:
        return Unavailable(f"llama-server connection lost: {type(exc).__name__}")

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        try:
            response = await self._http.post(f"{self.proc.base_url}{path}", json=body)
        except (httpx.TransportError, RuntimeError) as exc:  # RuntimeError: the pool was closed
            raise self._lost(exc) from exc
        if response.status_code != 200:
            raise convert.error_from_response(response.status_code, response.content)
        return response.json()

    async def _render_chat(self, chat: ChatParams) -> str:
        body: dict[str, Any] = {
            "messages": openai_messages(chat.messages),
            "add_generation_prompt": chat.add_generation_prompt,
        }
        if chat.tools:
            body["tools"] = chat.tools
        if chat.template_kwargs:
            body["chat_template_kwargs"] = chat.template_kwargs
        prompt: str = (await self._post("/apply-template", body))["prompt"]
        return prompt

    async def _prompt_ids(self, params: GenerationParams) -> list[int]:
        """The prompt as llama-server's /completion would tokenize it (BOS added, special
        tokens parsed): counted for the budget, then sent as ids so it is tokenized once."""
        if params.prompt_token_ids is not None:
            return list(params.prompt_token_ids)
        text = await self._render_chat(params.chat) if params.chat is not None else params.prompt
        answer = await self._post("/tokenize", {"content": text, "add_special": True, "parse_special": True})
        return [int(token) for token in answer["tokens"]]

    def _tokens_to_hold(self, prompt_tokens: int, max_tokens: int | None) -> int:
        assert self._info is not None
        context = self._info.max_model_len
        if prompt_tokens >= context:
            raise InvalidArgument(f"the prompt has {prompt_tokens} tokens; the model's context length is {context}")
        return min(prompt_tokens + (max_tokens or context), context)

    def _through_chat_layer(self, params: GenerationParams) -> bool:
        """Whether llama-server's chat layer answers (see services/engine_llamacpp/chat.py):
        a chat whose calls are not forced, whose output is not constrained, and that needs
        nothing only the raw path has (a continued last turn, stop token ids)."""
        chat = params.chat
        return (
            self.chat_parsing
            and chat is not None
            and chat.add_generation_prompt
            and not forced(chat.plan)
            and params.constraint is None
            and not params.stop_token_ids
        )

    async def generate(self, params: GenerationParams) -> AsyncIterator[inference_pb2.GenerateResponse]:
        if params.min_tokens:
            raise InvalidArgument("min_tokens is not supported by the llamacpp engine")
        timing = RequestClock()
        if self._through_chat_layer(params):
            assert params.chat is not None
            body = chat.chat_body(params, params.chat, reasoning=True)
            counted = await self._post("/v1/chat/completions/input_tokens", chat.chat_request(params.chat, True))
            async with self.budget.hold(self._tokens_to_hold(int(counted["input_tokens"]), params.max_tokens)):
                async for response in self._chat(params, body, timing):
                    yield response
            return
        prompt = await self._prompt_ids(params)
        async with self.budget.hold(self._tokens_to_hold(len(prompt), params.max_tokens)):
            async for response in self._generate(params, prompt, timing):
                yield response

    async def _chat(
        self, params: GenerationParams, body: dict[str, Any], timing: RequestClock
    ) -> AsyncIterator[inference_pb2.GenerateResponse]:
        stream = chat.ChatStream(params)
        try:
            async with self._streams.post("/v1/chat/completions", body) as answer:
                timing.started()
                if answer.status != 200:
                    raise convert.error_from_response(answer.status, await answer.read_error_body())
                async for batch in convert.sse_batches(answer.body_chunks()):
                    for delta in stream.take(batch):
                        timing.token()
                        yield inference_pb2.GenerateResponse(delta=delta)
                    if stream.finished is not None:
                        break
        except OSError as exc:
            if not self._stopping:
                raise self._lost(exc) from exc
            stream.finished = inference_pb2.Finished(reason=inference_pb2.FINISH_REASON_ABORTED, usage=stream.usage)
        if stream.finished is None:
            raise Unavailable("llama-server ended the chat stream without its usage chunk")
        finished = stream.finished
        if stream.reasoning_text and finished.reason != inference_pb2.FINISH_REASON_ABORTED:
            finished.usage.reasoning_tokens = await self._count("".join(stream.reasoning_text))
        finished.timings.CopyFrom(timing.timings())
        yield inference_pb2.GenerateResponse(finished=finished)

    async def _count(self, text: str) -> int:
        """Tokens of a text (llama-server does not count reasoning tokens itself)."""
        answer = await self._post("/tokenize", {"content": text, "add_special": False, "parse_special": True})
        return len(answer["tokens"])

    async def _generate(
        self, params: GenerationParams, prompt: list[int], timing: RequestClock
    ) -> AsyncIterator[inference_pb2.GenerateResponse]:
        stream = convert.CompletionStream(params)
        try:
            body = convert.completion_body(params, prompt, self.banned_under_schema)
            async with self._streams.post("/completion", body) as answer:
                timing.started()
                if answer.status != 200:
                    raise convert.error_from_response(answer.status, await answer.read_error_body())
                async for batch in convert.sse_batches(answer.body_chunks()):
                    deltas = stream.take(batch)
                    if stream.tokens_seen:
                        timing.token()
                    for delta in deltas:
                        yield inference_pb2.GenerateResponse(delta=delta)
                    if stream.finished is not None:
                        break
        except OSError as exc:  # ConnectionError (ProtocolError) and the connect's TimeoutError too
            if not self._stopping:
                raise self._lost(exc) from exc
            stream.finished = convert.finished_aborted(stream.last)  # the model is being stopped
        if stream.finished is None:
            raise Unavailable("llama-server ended the stream without a final chunk")
        finished = stream.finished
        finished.timings.CopyFrom(timing.timings())
        yield inference_pb2.GenerateResponse(finished=finished)

    async def tokenize(self, params: TokenizeParams) -> inference_pb2.TokenizeResponse:
        text = await self._render_chat(params.chat) if params.chat is not None else params.text
        body = {"content": text, "add_special": params.add_special_tokens, "with_pieces": params.return_pieces}
        answer = await self._post("/tokenize", body)
        response = inference_pb2.TokenizeResponse(max_model_len=self._info.max_model_len if self._info else 0)
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

    async def embed(self, params: EmbedParams) -> inference_pb2.EmbedResponse:
        body = {"input": params.inputs, "encoding_format": "base64"}
        return convert.embeddings_from_answer(await self._post("/v1/embeddings", body), len(params.inputs))
