"""Gateway conversions (JSON to proto, statuses to the seed's shape), no services needed."""

from __future__ import annotations

import pytest

from gateway.chat.protocol import ChatCompletionRequest
from gateway.completions.protocol import CompletionRequest
from gateway.errors import ApiError
from gateway.models.protocol import LoadRequest
from gateway.models.status import seed_status
from switchyard.v1 import common_pb2, control_pb2
from switchyard.v1 import inference_pb2 as pb


def test_completion_keeps_the_seed_defaults_and_engine() -> None:
    request = CompletionRequest(prompt="hi", engine="vllm").inputs()[0]
    assert request.engine == common_pb2.ENGINE_VLLM and request.prompt == "hi"
    assert request.stopping.max_tokens == 128
    assert request.sampling.temperature == pytest.approx(0.7) and request.sampling.top_p == pytest.approx(0.95)


def test_temperature_zero_is_sent_as_set() -> None:
    request = CompletionRequest(prompt=[1, 2], temperature=0, stop="\n", seed=0, logprobs=0).inputs()[0]
    assert request.sampling.HasField("temperature") and request.sampling.temperature == 0
    assert request.sampling.HasField("seed") and list(request.stopping.stop) == ["\n"]
    assert list(request.prompt_token_ids.ids) == [1, 2]
    assert request.output.HasField("logprobs") and request.output.logprobs == 0


def test_chat_request_uses_max_completion_tokens_and_text_parts() -> None:
    body = ChatCompletionRequest.model_validate(
        {
            "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
            "max_completion_tokens": 5,
            "logprobs": True,
            "top_logprobs": 3,
        }
    )
    request = body.inputs()[0]
    assert request.chat.messages[0].content == "ab" and request.stopping.max_tokens == 5
    assert request.output.logprobs == 3 and request.sampling.HasField("temperature") is False


def test_load_request_maps_each_engines_options() -> None:
    vllm = LoadRequest(model_path="m", engine="vllm", dtype="float32", max_model_len=1024).to_proto()
    assert vllm.WhichOneof("options") == "vllm" and vllm.vllm.dtype == "float32" and vllm.vllm.max_model_len == 1024
    llama = LoadRequest(model_path="m.gguf", engine="llamacpp", ctx_size=2048, flash_attn="off").to_proto()
    assert llama.llamacpp.ctx_size == 2048 and llama.llamacpp.flash_attn == control_pb2.FLASH_ATTENTION_OFF
    with pytest.raises(ApiError, match="dtype do not apply to llamacpp"):
        LoadRequest(model_path="m", engine="llamacpp", dtype="x")


def test_a_load_names_a_path_with_its_engine_or_a_listed_model() -> None:
    assert LoadRequest(model="switchyard-demo").engine is None  # resolved against the model roots
    assert LoadRequest(model="m", engine="vllm", dtype="float32").dtype == "float32"
    for body, param in (
        ({}, "model_path"),
        ({"model": "m", "model_path": "m"}, "model_path"),
        ({"model_path": "m"}, "engine"),
        ({"model": "m", "ctx_size": 8}, "ctx_size"),
    ):
        with pytest.raises(ApiError) as info:
            LoadRequest.model_validate(body)
        assert info.value.param == param, body


def status(engine: int, state: int, model: str = "", backend: str = "b", **kw: object) -> control_pb2.EngineStatus:
    return control_pb2.EngineStatus(engine=engine, state=state, model=model, backend=backend, **kw)  # type: ignore[arg-type]


def test_seed_status_aggregates_replicas() -> None:
    body = seed_status(
        [
            status(common_pb2.ENGINE_LLAMACPP, control_pb2.MODEL_STATE_LOADED, "m", "a", process_alive=True),
            status(common_pb2.ENGINE_LLAMACPP, control_pb2.MODEL_STATE_ERROR, backend="c", error="boom"),
        ]
    )
    assert body["llamacpp"]["status"] == "loaded" and body["llamacpp"]["model"] == "m"
    assert body["llamacpp"]["process_alive"] is True and len(body["llamacpp"]["replicas"]) == 2
    assert body["vllm"]["status"] == "error" and "no vllm backend" in body["vllm"]["error"]
    assert "process_alive" not in body["vllm"]  # the seed's vLLM entry has no such field


def test_seed_status_loading_wins_and_shows_progress() -> None:
    body = seed_status(
        [
            status(common_pb2.ENGINE_VLLM, control_pb2.MODEL_STATE_LOADING, "m", "a", load_progress=0.4),
            status(common_pb2.ENGINE_VLLM, control_pb2.MODEL_STATE_IDLE, backend="b"),
        ]
    )
    assert body["vllm"]["status"] == "loading" and body["vllm"]["progress"] == pytest.approx(0.4)


def test_finish_reason_names() -> None:
    from gateway.generation.responses import FINISH_REASONS

    assert FINISH_REASONS[pb.FINISH_REASON_STOP] == "stop" and FINISH_REASONS[pb.FINISH_REASON_LENGTH] == "length"


def test_catalogue_merges_replicas_aliases_and_available_models() -> None:
    from gateway.models.catalogue import model_list

    loaded = control_pb2.ModelStatus(name="m", aliases=["gpt"], state=control_pb2.MODEL_STATE_LOADED)
    loading = control_pb2.ModelStatus(name="m", state=control_pb2.MODEL_STATE_LOADING)
    statuses = [
        status(common_pb2.ENGINE_LLAMACPP, control_pb2.MODEL_STATE_LOADED, "m", "a", models=[loaded]),
        status(common_pb2.ENGINE_LLAMACPP, control_pb2.MODEL_STATE_LOADING, "m", "b", models=[loading]),
    ]
    available = [
        control_pb2.ModelEntry(name="m", engine=common_pb2.ENGINE_LLAMACPP),
        control_pb2.ModelEntry(name="other", engine=common_pb2.ENGINE_VLLM),
    ]
    listed = model_list(statuses, available)
    entries = {(e["id"], e["engine"]): e for e in listed}
    assert set(entries) == {("m", "llamacpp"), ("gpt", "llamacpp"), ("other", "vllm")}
    assert entries[("m", "llamacpp")]["state"] == "loaded" and entries[("m", "llamacpp")]["replicas"] == 2
    assert entries[("gpt", "llamacpp")]["alias_of"] == "m"
    assert entries[("other", "vllm")]["state"] == "available"


def test_an_id_both_engines_serve_is_listed_once() -> None:
    from gateway.models.catalogue import model_list

    demo = control_pb2.ModelStatus(name="demo", state=control_pb2.MODEL_STATE_LOADED)
    statuses = [
        status(common_pb2.ENGINE_VLLM, control_pb2.MODEL_STATE_LOADED, "demo", "v", models=[demo]),
        status(common_pb2.ENGINE_LLAMACPP, control_pb2.MODEL_STATE_LOADED, "demo", "l", models=[demo]),
    ]
    [entry] = model_list(statuses, [control_pb2.ModelEntry(name="demo", engine=common_pb2.ENGINE_VLLM)])
    assert entry["id"] == "demo" and entry["engine"] == "llamacpp"  # the default order's first
    assert [e["engine"] for e in entry["engines"]] == ["llamacpp", "vllm"]
    [loaded_on_vllm] = model_list(
        statuses[:1], [control_pb2.ModelEntry(name="demo", engine=common_pb2.ENGINE_LLAMACPP)]
    )
    assert loaded_on_vllm["engine"] == "vllm"  # the best state first


def test_seed_status_lists_every_model_of_every_replica() -> None:
    models = [
        control_pb2.ModelStatus(name="a", state=control_pb2.MODEL_STATE_LOADED, keep_alive_s=60),
        control_pb2.ModelStatus(name="b", state=control_pb2.MODEL_STATE_LOADING, load_progress=0.5),
    ]
    body = seed_status([status(common_pb2.ENGINE_VLLM, control_pb2.MODEL_STATE_LOADING, "b", "r1", models=models)])
    assert [(m["model"], m["status"], m["backend"]) for m in body["vllm"]["models"]] == [
        ("a", "loaded", "r1"),
        ("b", "loading", "r1"),
    ]
    assert body["vllm"]["models"][0]["keep_alive_s"] == 60 and body["vllm"]["models"][0]["expires_at"] is None


def test_logprobs_carry_bytes_and_logprobs_0_lists_the_sampled_token() -> None:
    from gateway.generation.responses import chat_logprobs, completion_logprobs

    split = pb.TokenLogprob(token_id=1, token="", logprob=-0.5, token_bytes=b"\xe6\x97")  # part of 日
    rest = pb.TokenLogprob(token_id=2, token="日", logprob=-0.25, token_bytes=b"\xa5")
    legacy = completion_logprobs([split, rest], 0)
    assert legacy["top_logprobs"] == [{"\ufffd": -0.5}, {"日": -0.25}]  # logprobs 0: the sampled token
    content = chat_logprobs([split, rest])["content"]
    assert bytes(content[0]["bytes"] + content[1]["bytes"]).decode() == "日"  # the text, rebuilt
