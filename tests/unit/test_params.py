"""Validation of Generate/Tokenize requests, shared by both engines (no engine needed)."""

from __future__ import annotations

import pytest

from switchyard.engine.params import generation_from_proto, tokenize_from_proto
from switchyard.errors import InvalidArgument
from switchyard.v1 import inference_pb2 as pb

VOCAB = 1000
CTX = 4096


def make(**kwargs: object) -> pb.GenerateRequest:
    kwargs.setdefault("prompt", "hello")
    return pb.GenerateRequest(**kwargs)  # type: ignore[arg-type]


def test_unset_sampling_fields_stay_unset() -> None:
    params = generation_from_proto(make(), VOCAB, CTX)
    assert params.temperature is None and params.top_p is None and params.max_tokens is None
    assert params.request_id  # one is made up when the caller sends none


def test_temperature_zero_is_kept_as_greedy() -> None:
    params = generation_from_proto(make(sampling=pb.SamplingParams(temperature=0.0)), VOCAB, CTX)
    assert params.temperature == 0.0


def test_the_smallest_top_p_a_client_can_send_is_accepted() -> None:
    params = generation_from_proto(make(sampling=pb.SamplingParams(top_p=1e-6)), VOCAB, CTX)
    assert params.top_p is not None and 0 < params.top_p < 1e-5


def test_top_k_disabled_values_map_to_zero() -> None:
    for value in (0, -1):
        params = generation_from_proto(make(sampling=pb.SamplingParams(top_k=value)), VOCAB, CTX)
        assert params.top_k == 0


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (pb.GenerateRequest(), "no input"),
        (make(prompt=""), "prompt is empty"),
        (pb.GenerateRequest(prompt_token_ids=pb.TokenIds()), "prompt_token_ids is empty"),
        (pb.GenerateRequest(prompt_token_ids=pb.TokenIds(ids=[1, VOCAB])), "outside the vocabulary"),
        (pb.GenerateRequest(chat=pb.ChatInput()), "chat.messages is empty"),
        (
            pb.GenerateRequest(chat=pb.ChatInput(messages=[pb.ChatMessage(role="robot", content="x")])),
            "role 'robot'",
        ),
        (make(stopping=pb.StoppingCriteria(max_tokens=-5)), "max_tokens must be at least 1"),
        (make(stopping=pb.StoppingCriteria(max_tokens=0)), "max_tokens must be at least 1"),
        (make(stopping=pb.StoppingCriteria(max_tokens=CTX + 1)), "exceeds the model's context"),
        (make(stopping=pb.StoppingCriteria(min_tokens=-1)), "min_tokens"),
        (make(stopping=pb.StoppingCriteria(max_tokens=2, min_tokens=3)), "min_tokens must not exceed"),
        (make(stopping=pb.StoppingCriteria(stop=[""])), "stop strings must not be empty"),
        (make(stopping=pb.StoppingCriteria(stop=["x"] * 17)), "at most 16 stop strings"),
        (make(stopping=pb.StoppingCriteria(stop_token_ids=[VOCAB + 1])), "stop_token_ids"),
        (make(sampling=pb.SamplingParams(temperature=-0.1)), "temperature must be between"),
        (make(sampling=pb.SamplingParams(temperature=2.5)), "temperature must be between"),
        (make(sampling=pb.SamplingParams(temperature=float("nan"))), "temperature must be between"),
        (make(sampling=pb.SamplingParams(top_p=0.0)), "top_p must be greater than 0.0"),
        (make(sampling=pb.SamplingParams(top_p=1.5)), "top_p must be greater than 0.0 and at most 1.0"),
        (make(sampling=pb.SamplingParams(top_k=-2)), "top_k must be"),
        (make(sampling=pb.SamplingParams(presence_penalty=3)), "presence_penalty"),
        (make(sampling=pb.SamplingParams(logit_bias={5: 101.0})), "logit_bias[5]"),
        (make(sampling=pb.SamplingParams(logit_bias={VOCAB: 1.0})), "logit_bias has token id"),
        (make(output=pb.OutputOptions(logprobs=21)), "logprobs must be between"),
        (make(output=pb.OutputOptions(logprobs=-1)), "logprobs must be between"),
        (make(request_id="r" * 100_000), "request_id is longer than 256"),
        (make(request_id="line\nbreak"), "request_id has control characters"),
        (make(prompt="x" * (CTX * 48 + 1)), "cannot fit the model's context"),
        (
            pb.GenerateRequest(chat=pb.ChatInput(messages=[pb.ChatMessage(role="user", content="x" * (CTX * 48 + 1))])),
            "chat has",
        ),
    ],
)
def test_bad_requests_are_invalid_argument(request_: pb.GenerateRequest, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("[", r"\[").replace("(", r"\(")):
        generation_from_proto(request_, VOCAB, CTX)


def test_chat_defaults_to_generation_prompt_and_keeps_roles() -> None:
    req = pb.GenerateRequest(
        chat=pb.ChatInput(
            messages=[pb.ChatMessage(role="system", content="s"), pb.ChatMessage(role="user", content="u")]
        )
    )
    params = generation_from_proto(req, VOCAB, CTX)
    assert params.chat is not None and params.chat.add_generation_prompt
    assert params.chat.messages == [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]


def test_tokenize_defaults_add_special_tokens_like_generate() -> None:
    params = tokenize_from_proto(pb.TokenizeRequest(text="hi"))
    assert params.add_special_tokens and params.text == "hi"
    params = tokenize_from_proto(pb.TokenizeRequest(text="hi", add_special_tokens=False))
    assert not params.add_special_tokens


def test_text_that_cannot_fit_is_refused_before_tokenizing() -> None:
    with pytest.raises(InvalidArgument, match="cannot fit"):
        tokenize_from_proto(pb.TokenizeRequest(text="x" * (CTX * 48 + 1)), CTX)
    assert tokenize_from_proto(pb.TokenizeRequest(text="x" * CTX * 48), CTX).text


@pytest.mark.parametrize("request_", [pb.TokenizeRequest(), pb.TokenizeRequest(text="")])
def test_tokenize_needs_input(request_: pb.TokenizeRequest) -> None:
    with pytest.raises(InvalidArgument):
        tokenize_from_proto(request_)
