"""Inference on a real engine with the demo model: every input kind, sampling, stopping,
logprobs, usage, errors, concurrency, cancellation and UTF-8 streaming."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from switchyard.v1 import control_pb2
from switchyard.v1 import inference_pb2 as pb
from tests.conformance.engines import EngineUnderTest
from tests.helpers import ServiceProcess, wait_until

ENGLISH = "The quick brown fox jumps over the lazy dog."
JAPANESE = "日本語のテキストをストリーミングで生成します。"


def greedy(prompt: str | None = None, max_tokens: int = 16, **kwargs: object) -> pb.GenerateRequest:
    stopping = kwargs.pop("stopping", pb.StoppingCriteria(max_tokens=max_tokens, ignore_eos=True))
    sampling = kwargs.pop("sampling", pb.SamplingParams(temperature=0.0))
    if prompt is not None:
        kwargs["prompt"] = prompt
    return pb.GenerateRequest(stopping=stopping, sampling=sampling, **kwargs)  # type: ignore[arg-type]


def run(service: ServiceProcess, request: pb.GenerateRequest) -> tuple[list[pb.Delta], pb.Finished]:
    """All deltas and the Finished message; checks the stream's shape on the way."""
    deltas: list[pb.Delta] = []
    finished: list[pb.Finished] = []
    for response in service.inference.Generate(request, timeout=120):
        assert not finished, "nothing may follow Finished"
        if response.HasField("delta"):
            deltas.append(response.delta)
        else:
            finished.append(response.finished)
    assert len(finished) == 1
    return deltas, finished[0]


def text_of(deltas: list[pb.Delta]) -> str:
    return "".join(d.text for d in deltas)


def tokenize(service: ServiceProcess, **kwargs: object) -> list[int]:
    return list(service.inference.Tokenize(pb.TokenizeRequest(**kwargs), timeout=30).token_ids)  # type: ignore[arg-type]


def load_figures(service: ServiceProcess) -> control_pb2.Load:
    return service.control.GetStatus(control_pb2.GetStatusRequest(), timeout=10).statuses[0].load


def test_greedy_prompt_is_deterministic_with_exact_length(
    loaded_service: ServiceProcess, engine: EngineUnderTest
) -> None:
    first, done = run(loaded_service, greedy(ENGLISH, 16))
    second, _ = run(loaded_service, greedy(ENGLISH, 16))
    assert text_of(first) == text_of(second) and text_of(first)
    assert done.reason == pb.FINISH_REASON_LENGTH
    assert done.usage.completion_tokens == 16
    assert done.usage.prompt_tokens == len(tokenize(loaded_service, text=ENGLISH))
    assert done.model == engine.served_name
    t = done.timings
    assert 0 <= t.queue_ms <= t.time_to_first_token_ms <= t.total_ms and t.decode_ms >= 0


def test_token_id_prompt_matches_text_prompt(loaded_service: ServiceProcess) -> None:
    ids = tokenize(loaded_service, text=ENGLISH)
    from_text, _ = run(loaded_service, greedy(ENGLISH, 12))
    from_ids, done = run(loaded_service, greedy(None, 12, prompt_token_ids=pb.TokenIds(ids=ids)))
    assert text_of(from_ids) == text_of(from_text)
    assert done.usage.prompt_tokens == len(ids)


def test_chat_is_rendered_with_the_models_template(loaded_service: ServiceProcess) -> None:
    chat = pb.ChatInput(
        messages=[pb.ChatMessage(role="system", content="Be brief."), pb.ChatMessage(role="user", content="こんにちは")]
    )
    deltas, done = run(loaded_service, greedy(None, 8, chat=chat))
    assert done.usage.completion_tokens == 8 and text_of(deltas)
    assert done.usage.prompt_tokens == len(tokenize(loaded_service, chat=chat))
    plain = tokenize(loaded_service, text="こんにちは")
    assert done.usage.prompt_tokens > len(plain)  # the template added its markers


def test_japanese_stream_joins_to_the_non_streamed_text(
    loaded_service: ServiceProcess, engine: EngineUnderTest
) -> None:
    deltas, done = run(loaded_service, greedy(JAPANESE, 48, output=pb.OutputOptions(return_token_ids=True)))
    joined = text_of(deltas)
    assert joined and done.usage.completion_tokens == 48
    assert joined == text_of(run(loaded_service, greedy(JAPANESE, 48))[0])
    # A character split across deltas would show up as replacement characters in the joined
    # text but not in the text decoded in one piece.
    # The one-piece text may also end in replacement characters for a character still
    # incomplete at the token limit, which a stream holds back and never sends.
    reference = engine.non_streamed_text(loaded_service, JAPANESE, 48)
    assert reference.startswith(joined) and set(reference[len(joined) :]) <= {"\ufffd"}


def test_stop_string_ends_generation_before_it(loaded_service: ServiceProcess) -> None:
    full = text_of(run(loaded_service, greedy(ENGLISH, 32))[0])
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    assert stop.strip(), f"pick a visible stop string from {full!r}"
    request = greedy(ENGLISH, 32, stopping=pb.StoppingCriteria(max_tokens=32, ignore_eos=True, stop=[stop]))
    deltas, done = run(loaded_service, request)
    assert text_of(deltas) == full[: full.index(stop)]
    assert done.reason == pb.FINISH_REASON_STOP and done.stop_string == stop


def test_stop_token_id_ends_generation_at_it(loaded_service: ServiceProcess) -> None:
    deltas, _ = run(loaded_service, greedy(ENGLISH, 24, output=pb.OutputOptions(return_token_ids=True)))
    ids = [t for d in deltas for t in d.token_ids]
    target = ids[len(ids) // 2]
    stopping = pb.StoppingCriteria(max_tokens=24, ignore_eos=True, stop_token_ids=[target])
    _, done = run(loaded_service, greedy(ENGLISH, 24, stopping=stopping))
    assert done.reason == pb.FINISH_REASON_STOP and done.stop_token_id == target
    assert done.usage.completion_tokens <= ids.index(target) + 1 + (24 - len(ids))


def test_logprobs_report_the_top_alternatives(loaded_service: ServiceProcess) -> None:
    deltas, _ = run(loaded_service, greedy(ENGLISH, 8, output=pb.OutputOptions(logprobs=3, return_token_ids=True)))
    entries = [lp for d in deltas for lp in d.logprobs]
    assert entries
    for entry in entries:
        assert entry.logprob <= 0.0
        assert len(entry.top_logprobs) == 3
        assert [t.logprob for t in entry.top_logprobs] == sorted((t.logprob for t in entry.top_logprobs), reverse=True)
        assert entry.top_logprobs[0].token_id == entry.token_id  # greedy takes the most likely token


def test_sampling_with_a_seed_is_reproducible(loaded_service: ServiceProcess) -> None:
    sampling = pb.SamplingParams(temperature=1.0, top_p=0.9, seed=1234)
    first = text_of(run(loaded_service, greedy(ENGLISH, 16, sampling=sampling))[0])
    second = text_of(run(loaded_service, greedy(ENGLISH, 16, sampling=sampling))[0])
    assert first == second


def test_eight_concurrent_streams_each_get_their_exact_token_count(loaded_service: ServiceProcess) -> None:
    lengths = [8, 16, 24, 32, 40, 48, 56, 64]
    with ThreadPoolExecutor(len(lengths)) as pool:
        results = list(pool.map(lambda n: run(loaded_service, greedy(f"{JAPANESE} {n}", n))[1], lengths))
    assert [r.usage.completion_tokens for r in results] == lengths
    assert all(r.reason == pb.FINISH_REASON_LENGTH for r in results)


def test_tokenize_and_detokenize_round_trip(loaded_service: ServiceProcess) -> None:
    answer = loaded_service.inference.Tokenize(
        pb.TokenizeRequest(text=JAPANESE, add_special_tokens=False, return_pieces=True), timeout=30
    )
    assert len(answer.pieces) == len(answer.token_ids) and answer.max_model_len > 0
    with_bos = tokenize(loaded_service, text=JAPANESE)
    assert len(with_bos) == len(answer.token_ids) + 1  # the BOS Generate adds
    text = loaded_service.inference.Detokenize(pb.DetokenizeRequest(token_ids=answer.token_ids), timeout=30).text
    assert text == JAPANESE


def test_cancelling_a_stream_frees_the_engine(loaded_service: ServiceProcess) -> None:
    request = greedy(ENGLISH, 3000)
    call = loaded_service.inference.Generate(request, timeout=300)
    assert next(call).HasField("delta")
    wait_until(lambda: load_figures(loaded_service).running_requests == 1, 30, "the request to run")
    call.cancel()
    wait_until(lambda: load_figures(loaded_service).running_requests == 0, 30, "the engine to stop generating")


def bad(**kwargs: object) -> pb.GenerateRequest:
    return pb.GenerateRequest(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        (bad(prompt="hi", stopping=pb.StoppingCriteria(max_tokens=-1)), "INVALID_ARGUMENT", "max_tokens"),
        (bad(prompt="hi", stopping=pb.StoppingCriteria(max_tokens=10**9)), "INVALID_ARGUMENT", "context length"),
        (bad(prompt="hi", sampling=pb.SamplingParams(temperature=5)), "INVALID_ARGUMENT", "temperature"),
        (bad(prompt="hi", sampling=pb.SamplingParams(temperature=-1)), "INVALID_ARGUMENT", "temperature"),
        (bad(prompt=""), "INVALID_ARGUMENT", "prompt is empty"),
        (bad(), "INVALID_ARGUMENT", "no input"),
        (bad(chat=pb.ChatInput()), "INVALID_ARGUMENT", "messages is empty"),
        (bad(prompt_token_ids=pb.TokenIds(ids=[10**6])), "INVALID_ARGUMENT", "outside the vocabulary"),
        (bad(prompt="hi", model="some-other-model"), "FAILED_PRECONDITION", "is not loaded"),
        (bad(prompt="hi", output=pb.OutputOptions(logprobs=50)), "INVALID_ARGUMENT", "logprobs"),
    ],
    ids=[
        "negative-max-tokens",
        "huge-max-tokens",
        "temperature-high",
        "temperature-negative",
        "empty-prompt",
        "no-input",
        "empty-chat",
        "token-out-of-vocab",
        "wrong-model",
        "too-many-logprobs",
    ],
)
def test_bad_generate_requests(
    loaded_service: ServiceProcess, request_: pb.GenerateRequest, code: str, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        list(loaded_service.inference.Generate(request_, timeout=30))
    assert info.value.code() == getattr(grpc.StatusCode, code), info.value.details()
    assert message in (info.value.details() or "")


def test_a_request_for_the_other_engine_is_refused(loaded_service: ServiceProcess, engine: EngineUnderTest) -> None:
    with pytest.raises(grpc.RpcError) as info:
        list(loaded_service.inference.Generate(bad(prompt="hi", engine=engine.other_kind), timeout=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"this is the {engine.name} engine" in (info.value.details() or "")


def test_a_prompt_longer_than_the_context_is_invalid(loaded_service: ServiceProcess) -> None:
    status = loaded_service.control.GetStatus(control_pb2.GetStatusRequest(), timeout=10).statuses[0]
    ids = [5] * (status.max_model_len + 10)
    with pytest.raises(grpc.RpcError) as info:
        list(loaded_service.inference.Generate(bad(prompt_token_ids=pb.TokenIds(ids=ids)), timeout=60))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_detokenize_out_of_vocabulary_is_invalid(loaded_service: ServiceProcess) -> None:
    with pytest.raises(grpc.RpcError) as info:
        loaded_service.inference.Detokenize(pb.DetokenizeRequest(token_ids=[10**6]), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
