"""Pure conversions between the switchyard contract and llama-server's HTTP API.

Unit-tested without a server. Facts about llama-server used here (from its sources, pinned
version): ``/completion`` streams ``data: {json}`` events and ends after a chunk with
``"stop": true`` (no ``[DONE]``); ``stop_type`` is eos/word/limit/none; ``tokens_evaluated``
is the prompt length, ``tokens_predicted`` the completion length and ``timings.cache_n`` the
prompt tokens reused from the cache; ``n_probs`` gives ``completion_probabilities`` entries of
``{id, token, logprob, top_logprobs}`` computed from the raw logits.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy
import orjson

from switchyard.engine.params import MIN_LOGPROB, GenerationParams
from switchyard.errors import EngineError, InvalidArgument, ResourceExhausted, Unavailable
from switchyard.v1 import control_pb2, inference_pb2

CACHE_TYPES = frozenset({"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"})
FLASH_ATTN = {
    control_pb2.FLASH_ATTENTION_UNSPECIFIED: "auto",
    control_pb2.FLASH_ATTENTION_AUTO: "auto",
    control_pb2.FLASH_ATTENTION_ON: "on",
    control_pb2.FLASH_ATTENTION_OFF: "off",
}
MAX_PARALLEL = 256
POOLING = {
    control_pb2.POOLING_UNSPECIFIED: "mean",
    control_pb2.POOLING_MEAN: "mean",
    control_pb2.POOLING_CLS: "cls",
    control_pb2.POOLING_LAST: "last",
}


def context_size(request: control_pb2.LoadModelRequest, default_ctx: int) -> int:
    """The tokens of the shared KV cache a load asks for (``-c``)."""
    return request.llamacpp.ctx_size if request.llamacpp.HasField("ctx_size") else default_ctx


LLAMA_SERVER_PARSERS = ("", "auto", "none")


def chat_parsing(request: control_pb2.LoadModelRequest) -> bool:
    """Whether llama-server's chat layer reads tool calls and reasoning for this model: its
    detection is its own (by template), so a load may leave it on (``auto``) or turn it off
    (``none``: chats are rendered with the template and their output stays text), for both."""
    for name in ("tool_parser", "reasoning_parser"):
        if getattr(request, name) not in LLAMA_SERVER_PARSERS:
            raise InvalidArgument(
                f"{name} {getattr(request, name)[:40]!r}: llama-server picks the format from the chat template; "
                "use auto or none"
            )
    tools_off, reasoning_off = request.tool_parser == "none", request.reasoning_parser == "none"
    if tools_off != reasoning_off:
        raise InvalidArgument(
            "llama-server reads tool calls and reasoning together: set tool_parser and "
            "reasoning_parser both to none, or neither"
        )
    return not tools_off


def server_args(
    model: Path,
    served_name: str,
    request: control_pb2.LoadModelRequest,
    default_ctx: int,
    default_parallel: int,
) -> list[str]:
    """llama-server flags for a load; raises InvalidArgument for bad options.

    Slots share one unified KV cache (``--kv-unified``), so every request may use the whole
    context, as with vLLM's max_model_len, instead of ``ctx / parallel`` tokens each. A model
    loaded for embeddings pools its states (mean unless asked otherwise) and takes a whole
    input in one batch, as llama-server needs, so its batch is the context.
    """
    opts = request.llamacpp
    chat_parsing(request)  # checked now, used per request
    ctx = context_size(request, default_ctx)
    parallel = opts.parallel if opts.HasField("parallel") else default_parallel
    if ctx < 16:
        raise InvalidArgument(f"llamacpp.ctx_size must be at least 16, got {ctx}")
    if not 1 <= parallel <= MAX_PARALLEL:
        raise InvalidArgument(f"llamacpp.parallel must be between 1 and {MAX_PARALLEL}, got {parallel}")
    args = [
        "-m",
        str(model),
        "-a",
        served_name,
        "-c",
        str(ctx),
        "-np",
        str(parallel),
        "--kv-unified",
        "--metrics",
        "--slots",
        "--jinja",
        "--no-webui",
        "-fa",
        FLASH_ATTN[opts.flash_attn],
    ]
    if opts.HasField("n_gpu_layers"):
        if opts.n_gpu_layers < -1:
            raise InvalidArgument(f"llamacpp.n_gpu_layers must be -1 (all) or more, got {opts.n_gpu_layers}")
        args += ["-ngl", "all" if opts.n_gpu_layers == -1 else str(opts.n_gpu_layers)]
    for field, flag in (("cache_type_k", "-ctk"), ("cache_type_v", "-ctv")):
        if opts.HasField(field):  # type: ignore[arg-type]
            value = getattr(opts, field)
            if value not in CACHE_TYPES:
                allowed = ", ".join(sorted(CACHE_TYPES))
                raise InvalidArgument(f"llamacpp.{field} {value!r} is not one of {allowed}")
            args += [flag, value]
    if opts.HasField("threads"):
        if opts.threads < 1:
            raise InvalidArgument("llamacpp.threads must be at least 1")
        args += ["-t", str(opts.threads)]
    if request.task == control_pb2.MODEL_TASK_EMBED:
        args += ["--embeddings", "--pooling", POOLING[request.pooling], "-b", str(ctx), "-ub", str(ctx)]
    return args


def embeddings_from_answer(answer: dict[str, Any], count: int) -> inference_pb2.EmbedResponse:
    """llama-server's /v1/embeddings answer (base64 float32 vectors) as the contract's."""
    data = sorted(answer["data"], key=lambda d: d["index"])
    if len(data) != count:
        raise Unavailable(f"llama-server returned {len(data)} embeddings for {count} inputs")
    response = inference_pb2.EmbedResponse(usage=inference_pb2.Usage(prompt_tokens=answer["usage"]["prompt_tokens"]))
    for item in data:
        values = numpy.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4")
        response.embeddings.add().values.extend(values.tolist())
    return response


def completion_body(params: GenerationParams, prompt: str | list[int], banned: Sequence[int] = ()) -> dict[str, Any]:
    """The streaming ``/completion`` request for validated params; under a constraint the
    ``banned`` tokens (services/engine_llamacpp/vocab.py) are never sampled."""
    body = {"prompt": prompt, **sampling_fields(params)}
    if params.logprobs is not None:
        # n_probs 0 turns probabilities off; logprobs 0 still wants the chosen token's.
        body["n_probs"] = max(params.logprobs, 1)
    if params.constraint is not None:  # llama-server turns the schema into its own grammar
        body["json_schema"] = {"type": "object"} if params.constraint.json_object else params.constraint.schema
        if banned:
            body["logit_bias"] = {**body.get("logit_bias", {}), **{str(token): False for token in banned}}
    return body


def sampling_fields(params: GenerationParams) -> dict[str, Any]:
    """What both of llama-server's generation endpoints take alike: length, sampling, stops."""
    body: dict[str, Any] = {
        "stream": True,
        "n_predict": params.max_tokens if params.max_tokens is not None else -1,
        "cache_prompt": True,
        "ignore_eos": params.ignore_eos,
    }
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("top_k", "top_k"),
        ("min_p", "min_p"),
        ("presence_penalty", "presence_penalty"),
        ("frequency_penalty", "frequency_penalty"),
        ("repetition_penalty", "repeat_penalty"),
    ):
        value = getattr(params, ours)
        if value is not None:
            body[theirs] = value
    if params.seed is not None:
        body["seed"] = params.seed & 0xFFFFFFFF  # llama.cpp seeds are 32-bit
    if params.logit_bias:
        body["logit_bias"] = {str(token): bias for token, bias in params.logit_bias.items()}
    if params.stop:
        body["stop"] = params.stop
    return body


def _bytes(entry: dict[str, Any]) -> bytes:
    """A probability entry's token bytes (llama-server lists them as numbers)."""
    raw = entry.get("bytes")
    if isinstance(raw, list) and all(isinstance(b, int) and 0 <= b < 256 for b in raw):
        return bytes(raw)
    return str(entry.get("token", "")).encode()


def _logprob(value: Any) -> float:
    return max(float(value), MIN_LOGPROB)


def logprobs_from_chunk(entries: list[dict[str, Any]], top_n: int) -> list[inference_pb2.TokenLogprob]:
    return [
        inference_pb2.TokenLogprob(
            token_id=entry["id"],
            token=entry.get("token", ""),
            logprob=_logprob(entry.get("logprob", MIN_LOGPROB)),
            token_bytes=_bytes(entry),
            top_logprobs=[
                inference_pb2.TopLogprob(
                    token_id=top["id"],
                    token=top.get("token", ""),
                    logprob=_logprob(top["logprob"]),
                    token_bytes=_bytes(top),
                )
                for top in entry.get("top_logprobs", [])[:top_n]
            ],
        )
        for entry in entries
    ]


def delta_from_chunk(chunk: dict[str, Any], params: GenerationParams) -> inference_pb2.Delta | None:
    """The Delta for a partial chunk, or None when it carries nothing the caller asked for.

    llama-server holds back text that is an incomplete UTF-8 sequence or could begin a stop
    string, so ``content`` is always whole characters.
    """
    text: str = chunk.get("content", "")
    delta = inference_pb2.Delta(text=text)
    if params.return_token_ids:
        delta.token_ids.extend(chunk.get("tokens", []))
    if params.logprobs is not None:
        delta.logprobs.extend(logprobs_from_chunk(chunk.get("completion_probabilities", []), params.logprobs))
    if not (delta.text or delta.token_ids or delta.logprobs):
        return None
    return delta


FINISH_REASONS = {
    "eos": inference_pb2.FINISH_REASON_STOP,
    "word": inference_pb2.FINISH_REASON_STOP,
    "limit": inference_pb2.FINISH_REASON_LENGTH,
}


def finished_from_final(final: dict[str, Any]) -> inference_pb2.Finished:
    """Finish reason and usage from the last (``"stop": true``) chunk."""
    finished = inference_pb2.Finished(
        reason=FINISH_REASONS.get(final.get("stop_type", ""), inference_pb2.FINISH_REASON_ABORTED),
        usage=inference_pb2.Usage(
            prompt_tokens=int(final.get("tokens_evaluated", 0)),
            completion_tokens=int(final.get("tokens_predicted", 0)),
            cached_tokens=int(final.get("timings", {}).get("cache_n", 0)),
        ),
    )
    if final.get("stop_type") == "word" and final.get("stopping_word"):
        finished.stop_string = final["stopping_word"]
    return finished


def _usage_so_far(chunk: dict[str, Any]) -> inference_pb2.Usage:
    return inference_pb2.Usage(
        prompt_tokens=int(chunk.get("tokens_evaluated", 0)),
        completion_tokens=int(chunk.get("tokens_predicted", 0)),
    )


def finished_at_stop_token(last_chunk: dict[str, Any], token_id: int) -> inference_pb2.Finished:
    """Finished for a stop token id, which llama-server has no field for: we end the stream."""
    return inference_pb2.Finished(
        reason=inference_pb2.FINISH_REASON_STOP,
        stop_token_id=token_id,
        usage=_usage_so_far(last_chunk),
    )


def finished_aborted(last_chunk: dict[str, Any]) -> inference_pb2.Finished:
    """Finished for a stream cut short by an unload or shutdown."""
    return inference_pb2.Finished(reason=inference_pb2.FINISH_REASON_ABORTED, usage=_usage_so_far(last_chunk))


def _event(line: bytes) -> dict[str, Any] | None:
    if not line.startswith(b"data:"):
        return None  # blank separators and ": ping" comments
    payload = line[5:].strip()
    if not payload or payload == b"[DONE]":
        return None
    event: dict[str, Any] = orjson.loads(payload)  # once per token: orjson parses it fastest
    return event


async def sse_batches(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[dict[str, Any]]]:
    """The ``data:`` events of an SSE byte stream, grouped by network read (the engine
    service merges what piles up into one message, so a backlog costs no extra messages)."""
    buffer = b""
    async for chunk in chunks:
        *lines, buffer = (buffer + chunk).split(b"\n")
        events = [e for e in map(_event, lines) if e is not None]
        if events:
            yield events
    last = _event(buffer)
    if last is not None:
        yield [last]


def error_from_response(status_code: int, body: bytes) -> EngineError:
    """Map a llama-server error answer to the contract's status codes."""
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = body.decode(errors="replace")[:500]
    if status_code == 400:
        return InvalidArgument(f"llama-server rejected the request: {message}")
    if status_code == 429:
        return ResourceExhausted(f"llama-server busy: {message}")
    if status_code == 503:
        return Unavailable(f"llama-server unavailable: {message}")
    return Unavailable(f"llama-server error {status_code}: {message}")


class CompletionStream:
    """The state of one streamed ``/completion``: turns batches of events into merged deltas
    and, at the end, the Finished message."""

    def __init__(self, params: GenerationParams) -> None:
        self.params = params
        self.last: dict[str, Any] = {}
        self.finished: inference_pb2.Finished | None = None
        self.tokens_seen = False

    def take(self, events: list[dict[str, Any]]) -> list[inference_pb2.Delta]:
        """One delta per token event (the engine service merges them into messages, and counts
        them against a stream interval); sets ``finished`` at the end."""
        deltas = []
        for event in events:
            if "error" in event:
                error = event["error"]
                raise error_from_response(int(error.get("code", 500)), json.dumps(event).encode())
            if event.get("stop"):
                self.finished = finished_from_final(event)
                break
            self.last = event
            self.tokens_seen = self.tokens_seen or bool(event.get("tokens"))
            delta = delta_from_chunk(event, self.params)
            if delta is not None:
                deltas.append(delta)
            hit = next((t for t in event.get("tokens", []) if t in self.params.stop_token_ids), None)
            if hit is not None:  # llama-server has no stop-token-id field: we end the stream
                self.finished = finished_at_stop_token(event, hit)
                break
        return deltas
