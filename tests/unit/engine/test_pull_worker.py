"""The pull worker against a hostile local hub, in process: what a hub answers (commit ids,
sizes, checksums, redirects) never becomes a path or a disk check unchecked, and a network
failure keeps what was staged for the next try."""

from __future__ import annotations

import hashlib
import os
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from huggingface_hub import close_session, constants, file_download

from switchyard.engine import pull_worker
from switchyard.errors import FailedPrecondition, Unavailable
from switchyard.v1 import common_pb2
from tests.hub import HubRepo, LocalHub, use_local_hub

GGUF = b"GGUF" + os.urandom(4096)
FILES = {"demo-F32.gguf": GGUF, "README.md": b"# demo\n"}
TRAVERSAL = "/../../../xx" + "0" * 28  # 40 characters, as a commit id is
LARGE = b"GGUF" + os.urandom(constants.DOWNLOAD_CHUNK_SIZE + 4096)

REPOS = {
    "good/demo-GGUF": HubRepo(FILES),
    "evil/sha-GGUF": HubRepo(FILES, listed_sha=TRAVERSAL),
    "evil/short-GGUF": HubRepo(FILES, listed_sha="abc"),
    "evil/size-GGUF": HubRepo(FILES, listed_sizes={"demo-F32.gguf": -5}),
    "evil/huge-GGUF": HubRepo(FILES, listed_sizes={"demo-F32.gguf": 2**63}),
    "evil/checksum-GGUF": HubRepo(FILES, listed_lfs_sha256={"demo-F32.gguf": "../" * 21 + "x"}),
    "evil/lie-GGUF": HubRepo(FILES, listed_lfs_sha256={"demo-F32.gguf": hashlib.sha256(b"other").hexdigest()}),
    "good/large-GGUF": HubRepo({"large-F32.gguf": LARGE}),
}


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalHub]:
    with LocalHub(REPOS) as running:
        use_local_hub(monkeypatch, running, tmp_path / "hf-home")
        monkeypatch.setattr(file_download, "time", types.SimpleNamespace(sleep=lambda seconds: None))
        try:
            yield running
        finally:
            close_session()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A model root two levels down, with a folder beside it that a traversal would reach."""
    (tmp_path / "xx").mkdir()
    (tmp_path / "xx" / "keep.txt").write_text("precious")
    folder = tmp_path / "a" / "models"
    folder.mkdir(parents=True)
    return folder


def job(root: Path, model: str) -> dict[str, Any]:
    return {"model": model, "root": str(root), "engine": common_pb2.ENGINE_LLAMACPP}


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and p.suffix != ".lock")


def test_a_good_pull_lands_under_the_root(hub: LocalHub, root: Path) -> None:
    result = pull_worker.pull(job(root, "good/demo-GGUF:F32"))
    assert Path(result["model_path"]).read_bytes() == GGUF
    assert result["revision"] == REPOS["good/demo-GGUF"].sha


def test_a_commit_id_with_a_path_in_it_touches_nothing_outside_the_root(hub: LocalHub, root: Path) -> None:
    outside = root.parent.parent
    before = files_under(outside)
    with pytest.raises(FailedPrecondition, match="commit id"):
        pull_worker.pull(job(root, "evil/sha-GGUF:F32"))
    assert (outside / "xx" / "keep.txt").read_text() == "precious"
    assert files_under(outside) == before
    assert not list(outside.rglob("xx.lock"))
    with pytest.raises(FailedPrecondition, match="commit id"):
        pull_worker.pull(job(root, "evil/short-GGUF:F32"))


@pytest.mark.parametrize("repo", ["evil/size-GGUF", "evil/huge-GGUF"])
def test_an_impossible_size_is_refused(hub: LocalHub, root: Path, repo: str) -> None:
    with pytest.raises(FailedPrecondition, match="impossible size"):
        pull_worker.pull(job(root, f"{repo}:F32"))
    assert files_under(root) == []


def test_a_checksum_that_is_no_sha256_is_refused(hub: LocalHub, root: Path) -> None:
    with pytest.raises(FailedPrecondition, match="not a sha256"):
        pull_worker.pull(job(root, "evil/checksum-GGUF:F32"))
    assert files_under(root) == []


def test_a_file_that_does_not_match_its_checksum_is_removed(hub: LocalHub, root: Path) -> None:
    with pytest.raises(Unavailable, match="checksum"):
        pull_worker.pull(job(root, "evil/lie-GGUF:F32"))
    assert files_under(root) == []


def test_a_redirect_elsewhere_still_has_to_match_the_checksum(hub: LocalHub, root: Path) -> None:
    """A hub may send the bytes from elsewhere (a CDN), but what arrives is checked."""
    elsewhere = f"{hub.url}/good/large-GGUF/resolve/main/large-F32.gguf"
    hub.publish("evil/redirect-GGUF", HubRepo(FILES, redirects={"demo-F32.gguf": elsewhere}))
    with pytest.raises(Unavailable):
        pull_worker.pull(job(root, "evil/redirect-GGUF:F32"))
    assert not (root / "evil" / "redirect-GGUF" / "demo-F32.gguf").exists()


def test_a_network_failure_keeps_the_staged_files_for_the_next_try(hub: LocalHub, root: Path) -> None:
    chunk = constants.DOWNLOAD_CHUNK_SIZE
    hub.cut_after("large-F32.gguf", chunk + 4096, times=1_000)
    with pytest.raises(Unavailable, match="failed after"):
        pull_worker.pull(job(root, "good/large-GGUF:F32"))
    staged = list((root / ".switchyard-partial").rglob("*.part"))
    assert [p.stat().st_size for p in staged] == [chunk]  # whole chunks kept
    hub.clear_cuts()
    result = pull_worker.pull(job(root, "good/large-GGUF:F32"))
    assert Path(result["model_path"]).read_bytes() == LARGE
    assert hub.requests_for("large-F32.gguf")[-1] == f"bytes={chunk}-"  # resumed


def test_no_network_is_unavailable_not_internal() -> None:
    code, message, _ = pull_worker._error(httpx2.ConnectError("[Errno 111] Connection refused"))
    assert code == "UNAVAILABLE" and "could not be reached" in message
    assert pull_worker._transient(httpx2.ReadError("cut"))
