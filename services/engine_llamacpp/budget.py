"""The tokens of llama-server's shared KV cache, held by the requests that run.

With ``--kv-unified`` every slot may use the whole context, but the slots share one cache:
when the running requests together need more cells than it has, llama-server fails every
request in the batch ("Context size has been exceeded", seen with three 4,000-token prompts
on an 8,192-token cache), where vLLM would queue them. So the engine service admits a request
only while what the running ones may still use fits: each holds its prompt plus its
``max_tokens`` (the rest of its context when unset), from before it is sent until it ends.
Waiters are served first come, first served, so a long request is not starved by short ones.
llama-server reclaims the cells idle slots keep for prompt caching when it needs them, so
they count for nothing here (checked on the pinned build).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

from switchyard.errors import InvalidArgument


class TokenBudget:
    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for _, future in self._waiters if not future.done())

    @contextlib.asynccontextmanager
    async def hold(self, tokens: int) -> AsyncIterator[None]:
        """Hold ``tokens`` of the cache while the block runs, waiting for them first."""
        if tokens > self.total:
            raise InvalidArgument(f"the request needs {tokens} tokens of context; the cache holds {self.total}")
        if self._waiters or self.used + tokens > self.total:
            future = asyncio.get_running_loop().create_future()
            entry = (tokens, future)
            self._waiters.append(entry)
            try:
                await future
            except BaseException:
                if future.done() and not future.cancelled():
                    self._release(tokens)  # granted just as the caller left
                elif entry in self._waiters:
                    self._waiters.remove(entry)
                    self._grant()  # the head left: those behind it may fit now
                raise
        else:
            self.used += tokens
        try:
            yield
        finally:
            self._release(tokens)

    def _release(self, tokens: int) -> None:
        self.used -= tokens
        self._grant()

    def _grant(self) -> None:
        while self._waiters:
            tokens, future = self._waiters[0]
            if future.done():  # cancelled while waiting
                self._waiters.popleft()
                continue
            if self.used + tokens > self.total:
                return
            self._waiters.popleft()
            self.used += tokens
            future.set_result(None)
