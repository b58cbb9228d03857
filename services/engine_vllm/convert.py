"""Pure conversions between the switchyard contract and vLLM's types (no engine needed)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from vllm import SamplingParams
from vllm.config.pooler import PoolerConfig, SequencePoolingType
from vllm.config.structured_outputs import StructuredOutputsConfig
from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

from switchyard.engine.params import MIN_LOGPROB, GenerationParams
from switchyard.errors import InvalidArgument
from switchyard.v1 import control_pb2, inference_pb2

# The seed system's load defaults.
DEFAULT_DTYPE = "bfloat16"
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
DEFAULT_MAX_MODEL_LEN = 8192
DTYPES = frozenset({"auto", "bfloat16", "float16", "float32", "half", "float"})

FINISH_REASONS = {
    "stop": inference_pb2.FINISH_REASON_STOP,
    "length": inference_pb2.FINISH_REASON_LENGTH,
    "abort": inference_pb2.FINISH_REASON_ABORTED,
    "tool_calls": inference_pb2.FINISH_REASON_TOOL_CALLS,  # said by switchyard when the parser read calls
}


def is_hf_model_dir(path: Path) -> bool:
    """A Hugging Face model folder: a config.json and weights beside it."""
    return (
        path.is_dir()
        and (path / "config.json").is_file()
        and (any(path.glob("*.safetensors")) or any(path.glob("*.bin")))
    )


def model_max_len(path: Path) -> int | None:
    """The context length the checkpoint was made for, from its config.json."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return None
    value = config.get("max_position_embeddings")
    return int(value) if isinstance(value, int) else None


def engine_args(
    path: Path,
    served_name: str,
    request: control_pb2.LoadModelRequest,
    on_cpu: bool,
    cpu_kv_cache_bytes: int,
    default_dtype: str = DEFAULT_DTYPE,
    otlp_traces_endpoint: str | None = None,
) -> AsyncEngineArgs:
    """vLLM engine arguments for a load; raises InvalidArgument for bad options.

    max_model_len defaults to 8192 as in the seed, capped at the checkpoint's own length so a
    small model loads with defaults; an explicit value is passed through for vLLM to judge.
    A load for embeddings runs vLLM's pooling runner, converting a generative model when it
    is one, pooled as asked (mean by default) and L2-normalised.
    """
    opts = request.vllm
    dtype = opts.dtype if opts.HasField("dtype") else default_dtype
    if dtype not in DTYPES:
        raise InvalidArgument(f"vllm.dtype {dtype!r} is not one of {', '.join(sorted(DTYPES))}")
    utilization = (
        opts.gpu_memory_utilization if opts.HasField("gpu_memory_utilization") else DEFAULT_GPU_MEMORY_UTILIZATION
    )
    if not 0.0 < utilization <= 1.0:
        raise InvalidArgument(f"vllm.gpu_memory_utilization must be in (0, 1], got {utilization}")
    if opts.HasField("max_model_len"):
        if opts.max_model_len < 16:
            raise InvalidArgument(f"vllm.max_model_len must be at least 16, got {opts.max_model_len}")
        max_len = opts.max_model_len
    else:
        max_len = min(DEFAULT_MAX_MODEL_LEN, model_max_len(path) or DEFAULT_MAX_MODEL_LEN)
    if opts.HasField("tensor_parallel_size") and opts.tensor_parallel_size < 1:
        raise InvalidArgument("vllm.tensor_parallel_size must be at least 1")
    if opts.HasField("max_num_seqs") and opts.max_num_seqs < 1:
        raise InvalidArgument("vllm.max_num_seqs must be at least 1")
    if opts.HasField("kv_cache_memory_bytes") and opts.kv_cache_memory_bytes == 0:
        raise InvalidArgument("vllm.kv_cache_memory_bytes must be positive")
    kv_bytes = opts.kv_cache_memory_bytes if opts.HasField("kv_cache_memory_bytes") else None
    if on_cpu and kv_bytes is None:
        kv_bytes = cpu_kv_cache_bytes  # vLLM on CPU needs an explicit KV-cache size
    return AsyncEngineArgs(
        model=str(path),
        tokenizer=str(path),
        served_model_name=[served_name],
        dtype=dtype,
        gpu_memory_utilization=utilization,
        max_model_len=max_len,
        quantization=opts.quantization if opts.HasField("quantization") else None,
        tensor_parallel_size=opts.tensor_parallel_size if opts.HasField("tensor_parallel_size") else 1,
        kv_cache_memory_bytes=kv_bytes,
        enforce_eager=True if on_cpu else (opts.enforce_eager if opts.HasField("enforce_eager") else False),
        trust_remote_code=opts.trust_remote_code,
        max_num_seqs=opts.max_num_seqs if opts.HasField("max_num_seqs") else None,
        disable_log_stats=True,  # our own stat logger reads the figures; no periodic log lines
        structured_outputs_config=STRUCTURED_OUTPUTS,
        otlp_traces_endpoint=otlp_traces_endpoint,  # vLLM's own spans, in the request's trace
        **(embedding_args(request.pooling) if request.task == control_pb2.MODEL_TASK_EMBED else {}),
    )


POOLING: dict[control_pb2.Pooling.ValueType, SequencePoolingType] = {
    control_pb2.POOLING_UNSPECIFIED: "MEAN",
    control_pb2.POOLING_MEAN: "MEAN",
    control_pb2.POOLING_CLS: "CLS",
    control_pb2.POOLING_LAST: "LAST",
}


def embedding_args(pooling: control_pb2.Pooling.ValueType) -> dict[str, Any]:
    return {
        "runner": "pooling",
        "convert": "embed",
        "pooler_config": PoolerConfig(pooling_type=POOLING[pooling], use_activation=True),
    }


# llguidance rather than xgrammar: xgrammar lets control characters into length-bounded JSON
# strings (invalid JSON; seen on vLLM 0.32). No optional whitespace, so a weak model cannot pad
# an answer forever; no properties a schema does not name, as llama-server's grammar does.
STRUCTURED_OUTPUTS = StructuredOutputsConfig(
    backend="guidance", disable_any_whitespace=True, disable_additional_properties=True
)


def sampling_params(params: GenerationParams, prompt_len: int, max_model_len: int) -> SamplingParams:
    """vLLM SamplingParams streaming deltas; unset fields keep vLLM's defaults."""
    if prompt_len >= max_model_len:
        raise InvalidArgument(f"the prompt has {prompt_len} tokens; the model's context length is {max_model_len}")
    max_tokens = params.max_tokens if params.max_tokens is not None else max_model_len - prompt_len
    if params.min_tokens > max_tokens:
        raise InvalidArgument(f"min_tokens {params.min_tokens} exceeds the {max_tokens} tokens the context leaves")
    kwargs: dict[str, Any] = {
        "n": 1,
        "output_kind": RequestOutputKind.DELTA,
        "max_tokens": max_tokens,
        "ignore_eos": params.ignore_eos,
        "min_tokens": params.min_tokens,
        "stop": params.stop or None,
        "stop_token_ids": params.stop_token_ids or None,
        "logprobs": params.logprobs,
        "skip_special_tokens": True,
    }
    for name in (
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "repetition_penalty",
    ):
        value = getattr(params, name)
        if value is not None:
            kwargs[name] = value
    if params.logit_bias:
        kwargs["logit_bias"] = dict(params.logit_bias)
    constraint = params.constraint
    if constraint is not None:
        structured = {"json_object": True} if constraint.json_object else {"json": constraint.schema}
        kwargs["structured_outputs"] = StructuredOutputsParams(**structured)
    return SamplingParams(**kwargs)


def logprobs_to_proto(
    token_ids: Iterable[int],
    positions: Iterable[Mapping[int, Any] | None],
    top_n: int,
    token_bytes: Callable[[int], bytes] = lambda token_id: b"",
) -> list[inference_pb2.TokenLogprob]:
    """One TokenLogprob per generated token from vLLM's per-position {token_id: Logprob}, each
    with its bytes (vLLM decodes a token that is part of a character as empty)."""
    entries = []
    for token_id, position in zip(token_ids, positions, strict=False):
        if position is None:
            continue
        chosen = position.get(token_id)
        ranked = sorted(
            (item for item in position.items() if item[1].rank is not None and item[1].rank <= top_n),
            key=lambda item: item[1].rank,
        )
        entries.append(
            inference_pb2.TokenLogprob(
                token_id=token_id,
                token=(chosen.decoded_token or "") if chosen else "",
                logprob=max(float(chosen.logprob), MIN_LOGPROB) if chosen else MIN_LOGPROB,
                token_bytes=token_bytes(token_id),
                top_logprobs=[
                    inference_pb2.TopLogprob(
                        token_id=tid,
                        token=lp.decoded_token or "",
                        logprob=max(float(lp.logprob), MIN_LOGPROB),
                        token_bytes=token_bytes(tid),
                    )
                    for tid, lp in ranked
                ],
            )
        )
    return entries


def finished_to_proto(
    finish_reason: str | None, stop_reason: int | str | None, usage: inference_pb2.Usage
) -> inference_pb2.Finished:
    finished = inference_pb2.Finished(
        reason=FINISH_REASONS.get(finish_reason or "", inference_pb2.FINISH_REASON_UNSPECIFIED), usage=usage
    )
    if isinstance(stop_reason, str):
        finished.stop_string = stop_reason
    elif isinstance(stop_reason, int):
        finished.stop_token_id = stop_reason
    return finished
