"""Which files a pull fetches, and how hub models are named (no hub needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchyard.engine.hub import ModelRef, default_engine, pick_files, read_marker, write_marker
from switchyard.engine.model_roots import model_name
from switchyard.errors import FailedPrecondition, InvalidArgument, NotFound
from switchyard.v1 import common_pb2

LLAMA, VLLM = common_pb2.ENGINE_LLAMACPP, common_pb2.ENGINE_VLLM
GGUF_REPO = [
    "README.md",
    "Qwen3-0.6B-Q8_0.gguf",
    "Qwen3-0.6B-Q4_K_M.gguf",
    "Qwen3-0.6B-F16.gguf",
    "big-Q4_K_M-00001-of-00002.gguf",
    "mmproj-Qwen3-F16.gguf",
]
HF_REPO = [
    ".gitattributes",
    "README.md",
    "config.json",
    "generation_config.json",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "original/consolidated.pth",
    "onnx/model.onnx",
    "Qwen3-0.6B-Q4_K_M.gguf",
]


@pytest.mark.parametrize(
    ("text", "repo", "quant", "name"),
    [
        ("Qwen/Qwen3-0.6B", "Qwen/Qwen3-0.6B", None, "Qwen/Qwen3-0.6B"),
        ("hf:Qwen/Qwen3-0.6B-GGUF:Q4_K_M", "Qwen/Qwen3-0.6B-GGUF", "Q4_K_M", "Qwen/Qwen3-0.6B-GGUF:Q4_K_M"),
        ("unsloth/gpt-oss-20b-GGUF:q8_0", "unsloth/gpt-oss-20b-GGUF", "q8_0", "unsloth/gpt-oss-20b-GGUF:q8_0"),
    ],
)
def test_model_refs(text: str, repo: str, quant: str | None, name: str) -> None:
    ref = ModelRef.parse(text)
    assert (ref.repo, ref.quant, ref.name) == (repo, quant, name)
    assert ModelRef.looks_like(text)


@pytest.mark.parametrize("text", ["", "noslash", "a/b/c", "../x", "org/..", "a/b:", "a/b:Q4 K", "/etc/passwd", "a/.b"])
def test_bad_model_refs(text: str) -> None:
    with pytest.raises(InvalidArgument):
        ModelRef.parse(text)


def test_the_engine_is_inferred_from_the_name() -> None:
    assert default_engine("org/repo:Q4_K_M") == "llamacpp"
    assert default_engine("org/Some-Model-GGUF") == "llamacpp"
    assert default_engine("Qwen/Qwen3-0.6B") == "vllm"


def test_a_gguf_quantization_is_picked_like_llama_server() -> None:
    assert pick_files(GGUF_REPO, LLAMA, "Q8_0") == ["Qwen3-0.6B-Q8_0.gguf"]
    assert pick_files(GGUF_REPO, LLAMA, "q8_0") == ["Qwen3-0.6B-Q8_0.gguf"]  # case does not matter
    assert pick_files(GGUF_REPO, LLAMA, None) == ["Qwen3-0.6B-Q4_K_M.gguf"]  # Q4_K_M, the first such model
    with pytest.raises(NotFound, match=r"Q2_K.*it has: F16, Q4_K_M, Q8_0"):
        pick_files(GGUF_REPO, LLAMA, "Q2_K")


def test_a_split_gguf_is_fetched_whole() -> None:
    names = ["m-Q4_K_M-00001-of-00002.gguf", "m-Q4_K_M-00002-of-00002.gguf", "m-Q8_0.gguf"]
    assert pick_files(names, LLAMA, "Q4_K_M") == names[:2]


def test_vllm_gets_config_tokenizer_and_safetensors_at_the_top_only() -> None:
    assert pick_files(HF_REPO, VLLM, None) == [
        "config.json",
        "generation_config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    with pytest.raises(NotFound, match="no safetensors"):
        pick_files(GGUF_REPO, VLLM, None)


def test_include_and_exclude_patterns() -> None:
    assert pick_files(HF_REPO, VLLM, None, include=["*.json"], exclude=["*index*"]) == [
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]


@pytest.mark.parametrize("hostile", ["../x.safetensors", "/etc/passwd", "a/../../b", "a\\b", "x/./y", ""])
def test_a_listing_with_a_hostile_name_is_refused(hostile: str) -> None:
    with pytest.raises(FailedPrecondition, match="outside the repository"):
        pick_files([*HF_REPO, hostile], VLLM, None)


def test_a_pulled_model_is_listed_under_its_hub_name(tmp_path: Path) -> None:
    gguf = tmp_path / "org" / "repo" / "m-Q4_K_M.gguf"
    gguf.parent.mkdir(parents=True)
    gguf.write_bytes(b"GGUF")
    assert model_name(gguf) == "m-Q4_K_M"
    write_marker(gguf, {"name": "org/repo:Q4_K_M", "revision": "a" * 40})
    assert model_name(gguf) == "org/repo:Q4_K_M"
    assert read_marker(gguf) == {"name": "org/repo:Q4_K_M", "revision": "a" * 40}
    folder = tmp_path / "org" / "repo"
    write_marker(folder, {"name": "org/repo"})
    assert model_name(folder) == "org/repo"
