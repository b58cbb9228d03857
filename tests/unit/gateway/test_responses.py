"""Streamed chunks: the template of a text-only chunk gives exactly the event built whole."""

from __future__ import annotations

import pytest

from gateway.generation.responses import ResponseBuilder
from gateway.streaming import sse_bytes
from switchyard.v1 import common_pb2
from switchyard.v1 import inference_pb2 as pb

TEXTS = ["日本語", 'quote " and \\ backslash', "\n\t", "😀", "\u0000control"]


@pytest.mark.parametrize("chat", [True, False])
def test_a_text_event_is_the_chunk_built_whole(chat: bool) -> None:
    builder = ResponseBuilder(chat=chat, model="demo", want_logprobs=False)
    expected = ResponseBuilder(chat=chat, model="demo", want_logprobs=False)
    expected.id, expected.created = builder.id, builder.created
    for index in (0, 3):
        for text in TEXTS:
            assert builder.text_event(index, text) == sse_bytes(expected.chunk(index, pb.Delta(text=text), None))
    # the model and engine a Finished names show in later chunks, in both forms
    finished = pb.Finished(model="renamed", engine=common_pb2.ENGINE_VLLM, reason=pb.FINISH_REASON_STOP)
    builder.chunk(0, None, finished)
    expected.chunk(0, None, finished)
    event = builder.text_event(1, "x")
    assert event == sse_bytes(expected.chunk(1, pb.Delta(text="x"), None))
    assert b'"model":"renamed"' in event and b'"engine":"vllm"' in event
