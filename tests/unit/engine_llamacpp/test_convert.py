"""Conversions between the contract and llama-server's HTTP API (no server needed)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import numpy
import pytest

from services.engine_llamacpp import convert
from switchyard.engine.params import MIN_LOGPROB, GenerationParams
from switchyard.errors import InvalidArgument, Unavailable
from switchyard.v1 import control_pb2, inference_pb2


def test_completion_body_passes_only_set_fields() -> None:
    body = convert.completion_body(GenerationParams(request_id="r"), "hi")
    assert body == {
        "prompt": "hi",
        "stream": True,
        "n_predict": -1,
        "cache_prompt": True,
        "ignore_eos": False,
    }


def test_completion_body_maps_every_sampling_field() -> None:
    params = GenerationParams(
        request_id="r",
        temperature=0.0,
        top_p=0.9,
        top_k=0,
        min_p=0.1,
        seed=2**40 + 7,
        presence_penalty=0.5,
        frequency_penalty=0.25,
        repetition_penalty=1.1,
        logit_bias={3: -100.0},
        max_tokens=12,
        stop=["\n"],
        ignore_eos=True,
        logprobs=0,
    )
    body = convert.completion_body(params, [1, 2])
    assert body["temperature"] == 0.0 and body["top_k"] == 0 and body["repeat_penalty"] == 1.1
    assert body["seed"] == 7  # llama.cpp seeds are 32-bit
    assert body["logit_bias"] == {"3": -100.0}
    assert body["n_predict"] == 12 and body["stop"] == ["\n"] and body["ignore_eos"] is True
    assert body["n_probs"] == 1  # logprobs=0 still wants the sampled token's logprob


def test_server_args_default_and_options() -> None:
    opts = control_pb2.LlamacppOptions(
        ctx_size=1024,
        parallel=2,
        n_gpu_layers=-1,
        flash_attn=control_pb2.FLASH_ATTENTION_OFF,
        cache_type_k="q8_0",
        threads=3,
    )
    args = convert.server_args(Path("/m/x.gguf"), "x", control_pb2.LoadModelRequest(llamacpp=opts), 8192, 8)
    joined = " ".join(args)
    assert "-c 1024" in joined and "-np 2" in joined and "-ngl all" in joined
    assert "-fa off" in joined and "-ctk q8_0" in joined and "-t 3" in joined
    assert "--kv-unified" in args
    default = " ".join(convert.server_args(Path("/m/x.gguf"), "x", control_pb2.LoadModelRequest(), 8192, 8))
    assert "-c 8192" in default and "-np 8" in default and "-fa auto" in default
    assert "--embeddings" not in default


def test_a_load_for_embeddings_pools_and_batches_whole_inputs() -> None:
    embed = control_pb2.LoadModelRequest(task=control_pb2.MODEL_TASK_EMBED, pooling=control_pb2.POOLING_LAST)
    joined = " ".join(convert.server_args(Path("/m/x.gguf"), "x", embed, 4096, 8))
    assert "--embeddings --pooling last -b 4096 -ub 4096" in joined
    embed.pooling = control_pb2.POOLING_UNSPECIFIED
    assert "--pooling mean" in " ".join(convert.server_args(Path("/m/x.gguf"), "x", embed, 4096, 8))


def test_embeddings_come_back_in_input_order() -> None:
    def b64(*values: float) -> str:
        return base64.b64encode(numpy.array(values, dtype="<f4").tobytes()).decode()

    answer = {
        "data": [{"index": 1, "embedding": b64(0.5, -1.0)}, {"index": 0, "embedding": b64(0.25, 2.0)}],
        "usage": {"prompt_tokens": 7},
    }
    response = convert.embeddings_from_answer(answer, 2)
    assert [list(e.values) for e in response.embeddings] == [[0.25, 2.0], [0.5, -1.0]]
    assert response.usage.prompt_tokens == 7
    with pytest.raises(Unavailable):
        convert.embeddings_from_answer(answer, 3)


@pytest.mark.parametrize(
    "opts",
    [
        control_pb2.LlamacppOptions(ctx_size=8),
        control_pb2.LlamacppOptions(parallel=0),
        control_pb2.LlamacppOptions(n_gpu_layers=-2),
        control_pb2.LlamacppOptions(cache_type_v="q3_weird"),
        control_pb2.LlamacppOptions(threads=0),
    ],
)
def test_bad_load_options_are_invalid_argument(opts: control_pb2.LlamacppOptions) -> None:
    with pytest.raises(InvalidArgument):
        convert.server_args(Path("/m/x.gguf"), "x", control_pb2.LoadModelRequest(llamacpp=opts), 8192, 8)


def test_delta_carries_only_what_was_asked() -> None:
    chunk = {
        "content": "日本",
        "tokens": [5, 6],
        "completion_probabilities": [
            {
                "id": 6,
                "token": "本",
                "logprob": -0.5,
                "top_logprobs": [{"id": 6, "token": "本", "logprob": -0.5}],
            }
        ],
    }
    plain = convert.delta_from_chunk(chunk, GenerationParams(request_id="r"))
    assert plain == inference_pb2.Delta(text="日本")
    full = convert.delta_from_chunk(chunk, GenerationParams(request_id="r", return_token_ids=True, logprobs=0))
    assert full is not None and list(full.token_ids) == [5, 6]
    assert full.logprobs[0].token_id == 6 and full.logprobs[0].logprob == pytest.approx(-0.5)
    assert len(full.logprobs[0].top_logprobs) == 0  # logprobs=0: no alternatives
    assert convert.delta_from_chunk({"content": "", "tokens": [7]}, GenerationParams(request_id="r")) is None


def test_zero_probability_is_clamped_to_a_finite_logprob() -> None:
    entry = {"id": 1, "token": "a", "logprob": -3.4e38, "top_logprobs": []}
    assert convert.logprobs_from_chunk([entry], 0)[0].logprob == MIN_LOGPROB


@pytest.mark.parametrize(
    ("stop_type", "reason"),
    [
        ("eos", inference_pb2.FINISH_REASON_STOP),
        ("word", inference_pb2.FINISH_REASON_STOP),
        ("limit", inference_pb2.FINISH_REASON_LENGTH),
        ("none", inference_pb2.FINISH_REASON_ABORTED),
    ],
)
def test_finish_reasons(stop_type: str, reason: int) -> None:
    final = {
        "stop": True,
        "stop_type": stop_type,
        "stopping_word": "\n" if stop_type == "word" else "",
        "tokens_evaluated": 7,
        "tokens_predicted": 3,
        "timings": {"cache_n": 2},
    }
    finished = convert.finished_from_final(final)
    assert finished.reason == reason
    assert (finished.usage.prompt_tokens, finished.usage.completion_tokens, finished.usage.cached_tokens) == (
        7,
        3,
        2,
    )
    assert finished.stop_string == ("\n" if stop_type == "word" else "")


async def test_sse_batches_group_by_read_and_skip_pings() -> None:
    async def reads() -> AsyncIterator[bytes]:
        yield b'data: {"content": "a"}\n\ndata: {"content"'
        yield b': "b"}\n\n:\n\n'
        yield b'data: {"stop": true}\n\ndata: [DONE]'

    batches = [batch async for batch in convert.sse_batches(reads())]
    assert batches == [[{"content": "a"}], [{"content": "b"}], [{"stop": True}]]


def test_a_batch_gives_a_delta_per_token_and_stops_at_a_stop_token() -> None:
    stream = convert.CompletionStream(GenerationParams(request_id="r", return_token_ids=True, stop_token_ids=[9]))
    deltas = stream.take([{"content": "a", "tokens": [1]}, {"content": "b", "tokens": [2]}])
    assert deltas == [inference_pb2.Delta(text="a", token_ids=[1]), inference_pb2.Delta(text="b", token_ids=[2])]
    assert stream.finished is None
    deltas = stream.take(
        [{"content": "c", "tokens": [9], "tokens_predicted": 3, "tokens_evaluated": 4}, {"content": "x"}]
    )
    assert [d.text for d in deltas] == ["c"]
    assert stream.finished is not None and stream.finished.stop_token_id == 9
    assert stream.finished.usage.completion_tokens == 3


def test_an_in_band_error_is_raised_with_its_status() -> None:
    stream = convert.CompletionStream(GenerationParams(request_id="r"))
    with pytest.raises(InvalidArgument):
        stream.take([{"error": {"code": 400, "message": "bad"}}])
