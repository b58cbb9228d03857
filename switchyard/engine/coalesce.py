"""Merge the deltas that pile up while a stream's previous message is being sent.

Every message costs each hop (engine service, router, gateway) the same CPU whatever it
carries, so under load, when an engine makes tokens faster than the hops pass them on,
sending what has accumulated as one message makes the cost per token fall as load rises.
A stream that keeps up is untouched: one message per delta, nothing held back to wait for
company (no timer, so no added latency).

An operator may also ask for fewer messages at any load with a stream interval (as vLLM's
``--stream-interval``): after the first delta, which goes at once for the time to first token,
deltas are held until they carry that many tokens, or something that cannot wait comes (a tool
call piece, the end). Each hop's CPU per token then falls by about that factor, for text that
arrives in runs of that many tokens instead of one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

from switchyard.v1 import inference_pb2


def merge_deltas(deltas: Sequence[inference_pb2.Delta]) -> inference_pb2.Delta:
    """One delta saying what several consecutive ones said (text, reasoning, token ids,
    logprobs); the caller merges no reasoning that follows text, so joined they keep their order."""
    if len(deltas) == 1:
        return deltas[0]
    merged = inference_pb2.Delta(text="".join(d.text for d in deltas), reasoning="".join(d.reasoning for d in deltas))
    for delta in deltas:
        merged.token_ids.extend(delta.token_ids)
        merged.logprobs.extend(delta.logprobs)
    return merged


def _mergeable(response: inference_pb2.GenerateResponse) -> bool:
    # Tool call pieces keep their own messages: a client assembles them piece by piece.
    return response.HasField("delta") and not response.delta.tool_calls


def _tokens(response: inference_pb2.GenerateResponse) -> int:
    return len(response.delta.token_ids) or 1  # a delta without ids still stands for one piece


def _count(waiting: deque[inference_pb2.GenerateResponse]) -> tuple[int, bool]:
    """Tokens of the plain deltas waiting, and whether something that cannot be held waits."""
    count = 0
    for response in waiting:
        if not _mergeable(response):
            return count, True
        count += _tokens(response)
    return count, False


def _take(waiting: deque[inference_pb2.GenerateResponse]) -> inference_pb2.GenerateResponse:
    """The next message to send: the first waiting one, with the plain deltas after it merged in."""
    first = waiting.popleft()
    if not _mergeable(first) or not waiting or not _mergeable(waiting[0]):
        return first
    deltas = [first.delta]
    texted = bool(first.delta.text)
    while waiting and _mergeable(waiting[0]):
        if texted and waiting[0].delta.reasoning:
            break  # reasoning after answer text: its own message, so the order holds
        texted = texted or bool(waiting[0].delta.text)
        deltas.append(waiting.popleft().delta)
    return inference_pb2.GenerateResponse(delta=merge_deltas(deltas))


async def coalesced(
    stream: AsyncIterator[inference_pb2.GenerateResponse],
    interval: int = 1,
) -> AsyncGenerator[inference_pb2.GenerateResponse, None]:
    """``stream``'s messages, read ahead by a task of their own while the caller sends, the
    deltas that arrived meanwhile merged into one, and after the first delta none sent with
    fewer than ``interval`` tokens unless the stream ends or a tool call piece follows.
    Closing this generator cancels the read ahead, which aborts the engine's request as
    closing ``stream`` would."""
    waiting: deque[inference_pb2.GenerateResponse] = deque()
    ready = asyncio.Event()
    ended = False
    first_delta_sent = False
    # What waits, kept as it grows rather than counted per token: its plain deltas' tokens,
    # and whether something that cannot be held (a tool call piece, the end) is among it.
    held_tokens, blocked = 0, False

    def holding() -> bool:
        """Whether what waits may wait for more (only ever after the first delta went out)."""
        return interval > 1 and first_delta_sent and not blocked and held_tokens < interval

    async def read_ahead() -> None:
        nonlocal ended, held_tokens, blocked
        try:
            async for response in stream:
                waiting.append(response)
                if interval > 1 and first_delta_sent:
                    if _mergeable(response):
                        held_tokens += _tokens(response)
                    else:
                        blocked = True
                    if holding():
                        continue  # held anyway: do not wake the sender (a task switch per token)
                ready.set()
        finally:
            ended = True
            ready.set()

    reader = asyncio.create_task(read_ahead())
    try:
        while True:
            await ready.wait()
            if not waiting or (holding() and not ended):
                if ended:
                    break
                ready.clear()
                continue
            response = _take(waiting)
            first_delta_sent = first_delta_sent or response.HasField("delta")
            held_tokens, blocked = _count(waiting)  # what is left: usually nothing
            yield response
        await reader  # the reader's exception, if it ended in one
    finally:
        reader.cancel()  # closed early (the caller went away): stop reading, abort the request
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader  # also collects an exception nobody asked for
