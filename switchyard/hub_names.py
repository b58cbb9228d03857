"""How a Hugging Face hub model is named, as the contract spells it: ``[hf:]ORG/REPO[:QUANT]``.

A fact every part shares (the gateway picks a pull's engine by it, the router canonicalises
request names with it, the engines parse pulls with it), so it lives here rather than in the
engine's pull code (``switchyard.engine.hub``): importing it loads no engine module.

A model is named like llama-server's ``-hf`` argument: ``ORG/REPO`` for the safetensors
weights (vLLM), ``ORG/REPO:QUANT`` for one GGUF quantization (llama.cpp).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from switchyard.errors import InvalidArgument

HF_PREFIX = "hf:"
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
REPO_ID = re.compile(rf"{_PART}/{_PART}")
QUANT = re.compile(r"[A-Za-z0-9_]{1,32}")


@dataclass(frozen=True)
class ModelRef:
    """``ORG/REPO`` with an optional GGUF quantization."""

    repo: str
    quant: str | None = None

    @property
    def name(self) -> str:
        return f"{self.repo}:{self.quant}" if self.quant else self.repo

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """``[hf:]ORG/REPO[:QUANT]``; InvalidArgument for anything else."""
        body = text.removeprefix(HF_PREFIX)
        repo, colon, quant = body.partition(":")
        if not REPO_ID.fullmatch(repo) or ".." in repo:
            raise InvalidArgument(f"{text!r} is not a hub repository id (ORG/REPO or ORG/REPO:QUANT)")
        if colon and not QUANT.fullmatch(quant):
            raise InvalidArgument(f"{quant!r} is not a quantization name (e.g. Q4_K_M)")
        return cls(repo, quant or None)

    @staticmethod
    def looks_like(text: str) -> bool:
        """Whether a model name is a hub id (so a request naming it may pull it)."""
        return REPO_ID.fullmatch(text.removeprefix(HF_PREFIX).partition(":")[0]) is not None


def canonical(name: str) -> str:
    """``hf:ORG/REPO[:QUANT]`` names the model ``ORG/REPO[:QUANT]``."""
    return name.removeprefix(HF_PREFIX) if name.startswith(HF_PREFIX) and ModelRef.looks_like(name) else name


def default_engine(model: str) -> str:
    """The engine a pull is for when none is named: llama.cpp for a quantization or a
    repository named *GGUF, else vLLM."""
    repo, _, quant = model.removeprefix(HF_PREFIX).partition(":")
    return "llamacpp" if quant or repo.lower().endswith("gguf") else "vllm"
