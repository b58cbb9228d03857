"""The bytes of a token, which its text cannot always give: a token may hold part of a UTF-8
character (its decoded text is then empty or U+FFFD), and OpenAI's logprobs carry each
token's bytes so that a client can put the text back together from the tokens.

Byte-level BPE vocabularies (GPT-2's scheme: Llama 3, Qwen, gpt-oss, the demo model) spell each
byte as a printable stand-in character; SentencePiece vocabularies spell a byte that has no
piece as ``<0xAB>`` and a space as ``▁``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte, the alphabet of byte-level BPE vocabularies."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {
        b: chr(c) for b, c in zip(printable + others, printable + [256 + i for i in range(len(others))], strict=True)
    }


_UNICODE_TO_BYTE = {char: byte for byte, char in byte_to_unicode().items()}


def piece_bytes(piece: str, byte_level: bool) -> bytes:
    """The bytes a vocabulary piece stands for."""
    if byte_level and all(char in _UNICODE_TO_BYTE for char in piece):
        return bytes(_UNICODE_TO_BYTE[char] for char in piece)
    byte = BYTE_PIECE.fullmatch(piece)
    if byte is not None:
        return bytes([int(byte.group(1), 16)])
    return piece.replace("\u2581", " ").encode()  # an added token, or a SentencePiece word


def bytes_of_tokens(pieces: Callable[[int], str | None], byte_level: bool) -> Callable[[int], bytes]:
    """id -> bytes for a tokenizer whose ``pieces(id)`` gives the vocabulary piece of an id,
    remembered per id (a vocabulary holds at most a few hundred thousand)."""
    known: dict[int, bytes] = {}

    def of(token_id: int) -> bytes:
        found = known.get(token_id)
        if found is None:
            found = known[token_id] = piece_bytes(pieces(token_id) or "", byte_level)
        return found

    return of
