"""The stored responses of one gateway process, for GET/DELETE /v1/responses/{id} and
``previous_response_id``: in memory, bounded by count, bytes and age, oldest dropped first.

It survives nothing: a restart empties it, and with several gateway workers each has its own
(a follow-up must reach the worker that answered, or it gets a 404). Each entry keeps the whole
conversation that led to it (instructions aside, which OpenAI does not carry over either), so a
follow-up needs only its own entry; a response is visible only to the API key that made it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.chat.messages import ChatMessage
from gateway.errors import ApiError


@dataclass
class Stored:
    owner: str
    response: dict[str, Any]
    history: list[ChatMessage]  # the conversation, this response's turn last
    size: int
    at: float


class ResponseStore:
    def __init__(self, max_items: int, max_bytes: int, max_age_s: float) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.bytes = 0
        self._entries: OrderedDict[str, Stored] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, owner: str, response: dict[str, Any], history: list[ChatMessage]) -> None:
        """Keep ``response`` (and the history a follow-up continues), dropping the oldest entries
        over the bounds; one larger than the byte bound alone is not kept."""
        size = len(orjson.dumps(response)) + sum(len(m.model_dump_json()) for m in history)
        if self.max_items == 0 or size > self.max_bytes:
            return
        self.delete(owner, response["id"])
        self._entries[response["id"]] = Stored(owner, response, history, size, time.monotonic())
        self.bytes += size
        self._expire()
        while len(self._entries) > self.max_items or self.bytes > self.max_bytes:
            self._drop_oldest()

    def get(self, owner: str, response_id: str, param: str | None = None) -> Stored:
        """The entry, or a 404 (also for another key's, or one too old)."""
        self._expire()
        entry = self._entries.get(response_id)
        if entry is None or entry.owner != owner:
            raise ApiError(404, f"no stored response {response_id[:80]!r} (this gateway keeps them a while)", param)
        return entry

    def delete(self, owner: str, response_id: str) -> bool:
        entry = self._entries.get(response_id)
        if entry is None or entry.owner != owner:
            return False
        del self._entries[response_id]
        self.bytes -= entry.size
        return True

    def _expire(self) -> None:
        oldest = time.monotonic() - self.max_age_s
        while self._entries and next(iter(self._entries.values())).at < oldest:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, entry = self._entries.popitem(last=False)
        self.bytes -= entry.size
