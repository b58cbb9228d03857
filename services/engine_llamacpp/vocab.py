"""The tokens a UTF-8 text can never hold, read off the model's GGUF vocabulary.

Under a JSON Schema llama-server's grammar reads a token's bytes as code points without
checking they are valid UTF-8: a byte no UTF-8 text has (0xC0, 0xC1, 0xF5-0xFF) starts one,
and an encoded UTF-16 surrogate (ED A0-BF ..) or an overlong form decodes to one. The text then
holds bytes llama-server writes out as U+FFFD, one per byte, so a string under
``maxLength: 20`` came back 23 characters long (issue 21; on the demo model 3 of 60 seeded
answers went over the limit; the seed that still did after banning the bytes alone held the
token ED A1 98). The engine bans every token whose bytes are invalid UTF-8 in themselves (a
character cut at the token's edges is fine) from every constrained request: no valid answer
needs them. A surrogate split across two tokens is not caught (measured: none in 200 seeds).
"""

from __future__ import annotations

import codecs
import logging
from pathlib import Path

import gguf

from switchyard.token_bytes import piece_bytes

logger = logging.getLogger(__name__)


def never_in_utf8(data: bytes) -> bool:
    """Whether ``data`` is invalid UTF-8 whatever comes before or after it."""
    lead = 0
    while lead < len(data) and lead < 3 and 0x80 <= data[lead] < 0xC0:
        lead += 1  # the end of a character the token before began
    rest = data[lead:]
    if rest[:1] and 0x80 <= rest[0] < 0xC0:
        return True  # more continuation bytes than any character has
    try:
        codecs.getincrementaldecoder("utf-8")().decode(rest, final=False)
    except UnicodeDecodeError:
        return True
    tail = rest[-2:]
    return len(tail) == 2 and tail[0] == 0xED and tail[1] >= 0xA0  # a surrogate begun at the end


def _field_text(reader: gguf.GGUFReader, name: str) -> list[str]:
    field = reader.fields.get(name)
    if field is None:
        return []
    return [bytes(field.parts[i]).decode("utf-8", "replace") for i in field.data]


def tokens_never_in_utf8(path: Path) -> list[int]:
    """Ids of the vocabulary's tokens holding a byte no UTF-8 text has; none when the file
    cannot be read (the ban is a refinement, not a condition of serving). The file is hostile
    input: gguf's reader fails on a corrupt one with whatever numpy or struct raises."""
    try:
        reader = gguf.GGUFReader(path)
        byte_level = _field_text(reader, "tokenizer.ggml.model")[:1] == ["gpt2"]
        tokens = _field_text(reader, "tokenizer.ggml.tokens")
        return [i for i, piece in enumerate(tokens) if never_in_utf8(piece_bytes(piece, byte_level))]
    except Exception as exc:  # any failure: serve without the ban; llama-server judges the file
        logger.warning(
            "cannot read the vocabulary of %s (%s): no tokens banned under a schema", path.name, type(exc).__name__
        )
        return []
