"""A generation's deltas as consecutive segments, for APIs whose streams are made of blocks or
items (Responses' output items, Anthropic's content blocks): a run of reasoning, a run of text,
or one tool call. A segment starts when the model starts writing another kind (or another
call) and stops when the next one starts or the generation ends. The API's stream says what
each start, piece and stop looks like (``Segmented``'s hooks); when a segment starts, stops and
which is open is written once, here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from switchyard.v1 import inference_pb2 as pb

Kind = Literal["reasoning", "text", "call"]


@dataclass
class Segment:
    kind: Kind
    position: int  # among the answer's segments, from 0
    call_id: str = ""  # a call's, from its first piece
    name: str = ""
    pieces: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


class Segmented:
    """Turns deltas into the events of an API's stream through three hooks."""

    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self._open: Segment | None = None
        self._calls: dict[int, Segment] = {}  # a call's index in the answer -> its segment

    def on_start(self, segment: Segment) -> list[bytes]:
        raise NotImplementedError

    def on_piece(self, segment: Segment, text: str) -> bytes:
        raise NotImplementedError

    def on_stop(self, segment: Segment, cut_short: bool) -> list[bytes]:
        raise NotImplementedError

    def delta(self, delta: pb.Delta) -> list[bytes]:
        events: list[bytes] = []
        if delta.reasoning:
            events += self._into("reasoning", delta.reasoning)
        if delta.text:
            events += self._into("text", delta.text)
        for piece in delta.tool_calls:
            segment = self._calls.get(piece.index)
            if segment is None:
                events += self.start(Segment("call", len(self.segments), piece.id, piece.name))
                segment = self._calls[piece.index] = self.segments[-1]
            if piece.arguments:  # a piece of an earlier call, after another segment started, adds to it
                segment.pieces.append(piece.arguments)
                events.append(self.on_piece(segment, piece.arguments))
        return events

    def _into(self, kind: Kind, text: str) -> list[bytes]:
        events: list[bytes] = []
        segment = self._open
        if segment is None or segment.kind != kind:
            events += self.start(Segment(kind, len(self.segments)))
            segment = self.segments[-1]
        segment.pieces.append(text)
        events.append(self.on_piece(segment, text))
        return events

    def start(self, segment: Segment) -> list[bytes]:
        """Stop the open segment and start ``segment``."""
        events = self.stop()
        self.segments.append(segment)
        self._open = segment
        return events + self.on_start(segment)

    def stop(self, cut_short: bool = False) -> list[bytes]:
        """Stop the open segment (``cut_short``: by max_tokens)."""
        segment, self._open = self._open, None
        return [] if segment is None else self.on_stop(segment, cut_short)
