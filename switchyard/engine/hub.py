"""Models from the Hugging Face hub: which files an engine fetches, where they land (their names are
``switchyard.hub_names``, re-exported here).

Pure functions, tested without a hub. The download itself runs in a worker process
(``switchyard.engine.pull_worker``), so a pull can be cancelled by stopping it and never blocks
a service's event loop.

A model is named like llama-server's ``-hf`` argument: ``ORG/REPO`` for the safetensors
weights (vLLM), ``ORG/REPO:QUANT`` for one GGUF quantization (llama.cpp). It lands in
``<first model root>/ORG/REPO/``, next to a marker file recording its name and the commit it
came from; the catalogue lists it under that name.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from switchyard.errors import FailedPrecondition, NotFound
from switchyard.hub_names import HF_PREFIX as HF_PREFIX  # re-exported: engine modules import hub naming from here
from switchyard.hub_names import ModelRef as ModelRef
from switchyard.hub_names import canonical as canonical
from switchyard.hub_names import default_engine as default_engine
from switchyard.v1 import common_pb2

DEFAULT_QUANT = "Q4_K_M"  # llama-server's choice when -hf names none
SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")
MARKER = ".switchyard-pull.json"
# What a hub answers is hostile input: a commit id becomes part of a path, sizes become disk checks.
COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_FILE_BYTES = 2**50  # 1 PiB: more is no model file, but a lie
MAX_LISTED_FILES = 100_000
# What vLLM needs of a repository: configuration, tokenizer and safetensors weights, top level.
VLLM_FILES = ("*.json", "*.safetensors", "tokenizer.model", "*.tiktoken", "*.txt", "*.jinja")


def check_commit(sha: object) -> str:
    """The commit id a hub answered, if it is one (40 lowercase hex digits): it names the
    staging folder, so anything else is refused before it reaches a path."""
    if not isinstance(sha, str) or not COMMIT_SHA.fullmatch(sha):
        raise FailedPrecondition(f"the hub answered a commit id that is not one: {str(sha)[:80]!r}; refusing the pull")
    return sha


def check_size(name: str, size: object) -> int:
    """A file size the hub listed, if it is a plausible one."""
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_FILE_BYTES:
        raise FailedPrecondition(f"the hub listed an impossible size for {name}: {str(size)[:40]}; refusing the pull")
    return size


def check_sha256(name: str, digest: object) -> str | None:
    """The sha256 the hub listed for an LFS file (None: not in LFS), if it is one."""
    if digest is None:
        return None
    if not isinstance(digest, str) or not SHA256.fullmatch(digest):
        raise FailedPrecondition(f"the hub listed a checksum for {name} that is not a sha256; refusing the pull")
    return digest


def check_names(names: Sequence[str]) -> None:
    """Refuse a listing with a file name that could leave the model's folder."""
    if len(names) > MAX_LISTED_FILES:
        raise FailedPrecondition(f"the hub listed {len(names)} files (at most {MAX_LISTED_FILES}); refusing the pull")
    for name in names:
        path = PurePosixPath(name)
        hostile = (
            not name
            or "\x00" in name
            or "\\" in name
            or path.is_absolute()
            or any(part in ("", ".", "..") for part in name.split("/"))
            or len(name.encode()) > 1024
        )
        if hostile:
            raise FailedPrecondition(f"the hub listed a file name outside the repository: {name!r}; refusing the pull")


def is_later_part(name: str) -> bool:
    """A part of a split GGUF other than the first (llama.cpp loads a split model by its
    first part)."""
    split = SPLIT.search(name)
    return split is not None and int(split.group(1)) != 1


def _quant_of(name: str) -> str | None:
    """The quantization tag in a GGUF file name (``Qwen3-0.6B-Q4_K_M.gguf`` -> ``Q4_K_M``)."""
    stem = SPLIT.sub("", PurePosixPath(name).name).removesuffix(".gguf")
    tags = re.split(r"[-.]", stem)
    for tag in reversed(tags):
        if re.fullmatch(r"(?i)(I?Q\d\w*|F16|BF16|F32|MXFP4\w*)", tag):
            return tag.upper()
    return None


def _gguf_files(names: Sequence[str], quant: str | None) -> list[str]:
    models = [n for n in names if n.endswith(".gguf") and not PurePosixPath(n).name.startswith("mmproj")]
    if not models:
        raise NotFound("the repository has no GGUF file for llama.cpp")
    wanted = (quant or DEFAULT_QUANT).upper()
    chosen = [n for n in models if _quant_of(n) == wanted]
    if not chosen and quant is None:
        first = sorted(models)[0]  # no Q4_K_M: the first model, as llama-server does
        chosen = [n for n in models if SPLIT.sub("", n) == SPLIT.sub("", first)]
    if not chosen:
        found = sorted({q for q in map(_quant_of, models) if q})
        raise NotFound(f"no GGUF of quantization {wanted} in the repository (it has: {', '.join(found) or 'none'})")
    first = sorted(chosen)[0]
    return sorted(n for n in chosen if SPLIT.sub("", n) == SPLIT.sub("", first))  # one model, all its parts


def _vllm_files(names: Sequence[str]) -> list[str]:
    top = [n for n in names if "/" not in n]
    chosen = [n for n in top if any(fnmatch.fnmatch(n, pattern) for pattern in VLLM_FILES)]
    if not any(n.endswith(".safetensors") for n in chosen) or not any(n == "config.json" for n in chosen):
        raise NotFound("the repository has no safetensors weights with a config.json for vLLM")
    return sorted(chosen)


def pick_files(
    names: Sequence[str],
    engine: common_pb2.Engine.ValueType,
    quant: str | None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[str]:
    """The repository files a pull fetches: the engine's choice, or what ``include`` names;
    then minus ``exclude``."""
    check_names(names)
    if include:
        chosen = sorted(n for n in names if any(fnmatch.fnmatch(n, pattern) for pattern in include))
    elif engine == common_pb2.ENGINE_LLAMACPP:
        chosen = _gguf_files(names, quant)
    else:
        chosen = _vllm_files(names)
    chosen = [n for n in chosen if not any(fnmatch.fnmatch(n, pattern) for pattern in exclude)]
    if not chosen:
        raise NotFound("no file of the repository matches the pull")
    return chosen


def destination(root: Path, ref: ModelRef) -> Path:
    """The folder a repository's files land in."""
    return root.joinpath(*ref.repo.split("/"))


def model_path(folder: Path, files: Sequence[str], engine: common_pb2.Engine.ValueType) -> Path:
    """What a load points at: the first GGUF (part) for llama.cpp, the folder for vLLM."""
    if engine == common_pb2.ENGINE_LLAMACPP:
        ggufs = sorted(n for n in files if n.endswith(".gguf"))
        if not ggufs:
            raise NotFound("the files of the pull hold no GGUF model for llama.cpp")
        return folder / ggufs[0]
    return folder


def marker_of(path: Path) -> Path:
    """Where the record of a pulled model lives: beside a GGUF file, inside a folder."""
    return path / MARKER if path.is_dir() else path.with_name(path.name + MARKER)


def write_marker(path: Path, record: dict[str, Any]) -> None:
    marker = marker_of(path)
    temporary = marker.with_name(marker.name + ".tmp")
    temporary.write_text(json.dumps(record, indent=2), encoding="utf-8")
    temporary.replace(marker)


def read_marker(path: Path) -> dict[str, Any] | None:
    """The record of a pulled model at ``path``; None for a model put there by hand."""
    try:
        record = json.loads(marker_of(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("name"), str) else None
