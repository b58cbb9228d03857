"""Deltas that pile up while the previous message is sent go as one; a stream that keeps up
is passed on message for message; errors and early closes behave as without merging."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from switchyard.engine.coalesce import coalesced
from switchyard.v1 import inference_pb2 as pb


def delta(text: str, token: int) -> pb.GenerateResponse:
    return pb.GenerateResponse(delta=pb.Delta(text=text, token_ids=[token], logprobs=[pb.TokenLogprob(token_id=token)]))


def tool_piece(arguments: str) -> pb.GenerateResponse:
    return pb.GenerateResponse(delta=pb.Delta(tool_calls=[pb.ToolCallDelta(index=0, arguments=arguments)]))


FINISHED = pb.GenerateResponse(finished=pb.Finished(reason=pb.FINISH_REASON_STOP))


async def all_at_once(*responses: pb.GenerateResponse) -> AsyncIterator[pb.GenerateResponse]:
    for response in responses:
        yield response  # no await between: everything is waiting when the first is sent


async def test_what_piled_up_goes_as_one_message_in_order() -> None:
    got = [r async for r in coalesced(all_at_once(*(delta(c, i) for i, c in enumerate("abcd")), FINISHED))]
    assert len(got) == 2 and got[1] == FINISHED
    merged = got[0].delta
    assert merged.text == "abcd" and list(merged.token_ids) == [0, 1, 2, 3]
    assert [lp.token_id for lp in merged.logprobs] == [0, 1, 2, 3]


async def test_a_stream_that_keeps_up_is_passed_on_message_for_message() -> None:
    sent = asyncio.Event()

    async def one_at_a_time() -> AsyncIterator[pb.GenerateResponse]:
        for i, c in enumerate("abc"):
            yield delta(c, i)
            await sent.wait()  # the next token comes only once this one went out
            sent.clear()

    texts = []
    async for response in coalesced(one_at_a_time()):
        texts.append(response.delta.text)
        sent.set()
    assert texts == ["a", "b", "c"]


async def test_tool_call_pieces_keep_their_own_messages() -> None:
    responses = [delta("a", 0), delta("b", 1), tool_piece('{"x"'), tool_piece(": 1}"), delta("c", 2), FINISHED]
    got = [r async for r in coalesced(all_at_once(*responses))]
    assert got[0].delta.text == "ab" and list(got[0].delta.token_ids) == [0, 1]
    assert got[1:] == [tool_piece('{"x"'), tool_piece(": 1}"), delta("c", 2), FINISHED]


async def test_an_error_comes_after_what_was_read_before_it() -> None:
    async def failing() -> AsyncIterator[pb.GenerateResponse]:
        yield delta("a", 0)
        raise RuntimeError("engine lost")

    got = []
    with pytest.raises(RuntimeError, match="engine lost"):
        async for response in coalesced(failing()):
            got.append(response.delta.text)
    assert got == ["a"]


async def test_closing_early_cancels_the_read_ahead() -> None:
    closed = asyncio.Event()

    async def endless() -> AsyncIterator[pb.GenerateResponse]:
        try:
            i = 0
            while True:
                yield delta("x", i)
                i += 1
                await asyncio.sleep(0)
        finally:
            closed.set()  # where an engine aborts its request

    stream = coalesced(endless())
    assert (await anext(stream)).delta.text.startswith("x")
    await stream.aclose()
    assert closed.is_set()


def texts(responses: list[pb.GenerateResponse]) -> list[str]:
    return [r.delta.text if r.HasField("delta") else "<end>" for r in responses]


async def test_a_stream_interval_holds_deltas_until_they_carry_that_many_tokens() -> None:
    async def one_at_a_time() -> AsyncIterator[pb.GenerateResponse]:
        for i, c in enumerate("abcdefghij"):
            yield delta(c, i)
            for _ in range(5):  # the sender runs between tokens: without an interval, one each
                await asyncio.sleep(0)
        yield FINISHED

    paced = [r async for r in coalesced(one_at_a_time())]
    assert texts(paced) == [*"abcdefghij", "<end>"]  # the pacing really lets each go alone
    got = [r async for r in coalesced(one_at_a_time(), interval=3)]
    assert texts(got) == ["a", "bcd", "efg", "hij", "<end>"]  # the first at once, then runs of three
    assert [list(r.delta.token_ids) for r in got[:2]] == [[0], [1, 2, 3]]


async def test_a_stream_interval_never_holds_a_tool_call_piece_or_the_end() -> None:
    responses = [delta("a", 0), delta("b", 1), tool_piece('{"x": 1}'), delta("c", 2), FINISHED]
    got = [r async for r in coalesced(all_at_once(*responses), interval=10)]
    assert texts(got[:1]) == ["a"] or texts(got[:1]) == ["ab"]
    assert tool_piece('{"x": 1}') in got and got[-1] == FINISHED
    assert "".join(r.delta.text for r in got) == "abc"


async def test_a_stream_interval_sends_a_short_tail_when_the_stream_ends() -> None:
    got = [r async for r in coalesced(all_at_once(delta("a", 0), delta("b", 1), FINISHED), interval=64)]
    assert "".join(r.delta.text for r in got) == "ab" and got[-1] == FINISHED
