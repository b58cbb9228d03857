"""A token's bytes from its vocabulary piece: byte-level BPE, SentencePiece byte pieces, words."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer

from switchyard.token_bytes import bytes_of_tokens, piece_bytes


def test_byte_level_pieces_join_to_the_text_even_split_inside_a_character(demo_model_dir: Path) -> None:
    tok = Tokenizer.from_file(str(demo_model_dir / "switchyard-demo" / "tokenizer.json"))
    text = "日本語の hello ✓"
    ids = tok.encode(text, add_special_tokens=False).ids
    of = bytes_of_tokens(tok.id_to_token, byte_level=True)
    pieces = [of(i) for i in ids]
    assert b"".join(pieces).decode() == text
    assert any(not _whole(piece) for piece in pieces)  # the demo splits some characters across tokens


def _whole(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def test_sentencepiece_pieces() -> None:
    assert piece_bytes("<0xE3>", byte_level=False) == b"\xe3"
    assert piece_bytes("\u2581hello", byte_level=False) == b" hello"
    assert piece_bytes("<tool_call>", byte_level=True) == b"<tool_call>"  # an added token
