"""The o200k_harmony vocabulary as a Hugging Face tokenizer, extracted offline.

vLLM's harmony path feeds generated token ids to openai_harmony's parser, which reads them in
the o200k_harmony vocabulary, so a harmony demo model for vLLM needs exactly that vocabulary.
It ships inside the ``openai_harmony`` package (installed with vLLM; no download): decoding
every id gives each token's bytes, and a tiktoken vocabulary is a byte-level BPE whose merge
ranks are the token ids, so the merges follow from the bytes, as transformers' tiktoken
converter derives them. llama.cpp reads the same vocabulary with its ``gpt-4o`` pre-tokenizer.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

from switchyard.token_bytes import byte_to_unicode

VOCAB_SIZE = 201088  # gpt-oss's embedding rows: ids 0..199997 are BPE tokens, the rest special
# o200k's pre-tokenizer split (tiktoken's pattern; llama.cpp's "gpt-4o" implements it).
PATTERN = "|".join(
    [
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"\p{N}{1,3}",
        r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
        r"\s*[\r\n]+",
        r"\s+(?!\S)",
        r"\s+",
    ]
)


def harmony_encoding() -> Any:
    """openai_harmony's gpt-oss encoding (its vocabulary is embedded in the package)."""
    try:
        harmony = importlib.import_module("openai_harmony")
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise RuntimeError("the harmony-o200k demo variant needs openai_harmony, which vLLM installs") from e
    return harmony.load_harmony_encoding(harmony.HarmonyEncodingName.HARMONY_GPT_OSS)


@cache
def o200k_pieces() -> tuple[tuple[bytes, ...], int]:
    """Every token's bytes by id, and the first special id (all ids from it on are special)."""
    enc = harmony_encoding()
    pieces = tuple(bytes(enc._inner.decode_bytes([i])) for i in range(VOCAB_SIZE))
    first_special = next(i for i in range(VOCAB_SIZE) if enc.is_special_token(i))
    if not all(enc.is_special_token(i) for i in range(first_special, VOCAB_SIZE)):
        raise RuntimeError("o200k_harmony's special tokens are not one block at the end")
    return pieces, first_special


def _merges(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """The BPE merges of a tiktoken vocabulary: every split of a token into two tokens, by the
    rank of the whole, then of the halves (transformers' TikTokenConverter does the same)."""
    merges: list[tuple[int, int, int, bytes, bytes]] = []
    for token, rank in ranks.items():
        for k in range(1, len(token)):
            left, right = token[:k], token[k:]
            if left in ranks and right in ranks:
                merges.append((rank, ranks[left], ranks[right], left, right))
    merges.sort()
    return [(m[3], m[4]) for m in merges]


def build_o200k_tokenizer() -> Tokenizer:
    """A byte-level BPE over o200k_harmony: same ids and same splits as the harmony encoding."""
    pieces, first_special = o200k_pieces()
    ranks = {piece: i for i, piece in enumerate(pieces[:first_special])}
    if len(ranks) != first_special:
        raise RuntimeError("o200k_harmony has duplicate tokens")
    to_text = byte_to_unicode()

    def text(piece: bytes) -> str:
        return "".join(to_text[b] for b in piece)

    vocab = {text(p): i for p, i in ranks.items()}
    merges = [(text(a), text(b)) for a, b in _merges(ranks)]
    # ignore_merges: a whole pre-token that is in the vocabulary is one token, as in tiktoken.
    tok = Tokenizer(models.BPE(vocab, merges, fuse_unk=False, ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    specials = [AddedToken(p.decode(), special=True, normalized=False) for p in pieces[first_special:]]
    tok.add_special_tokens(specials)
    if tok.get_vocab_size() != VOCAB_SIZE:
        raise RuntimeError(f"o200k tokenizer has {tok.get_vocab_size()} tokens, not {VOCAB_SIZE}")
    return tok


def special_ids() -> range:
    """The ids of o200k_harmony's special tokens (named and reserved)."""
    return range(o200k_pieces()[1], VOCAB_SIZE)
