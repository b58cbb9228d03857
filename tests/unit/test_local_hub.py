"""The local hub against the real huggingface_hub client: what the model-pull tests will rely on."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from huggingface_hub import HfApi, close_session, constants, file_download, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from tqdm import tqdm

from tests.hub import HubRepo, LocalHub, use_local_hub

MIB = 1024 * 1024
CONFIG = b'{"architectures": ["LlamaForCausalLM"], "hidden_size": 64}\n'
TOKENIZER = b'{"version": "1.0", "model": {"type": "BPE"}}\n' * 50
WEIGHTS = os.urandom(MIB + 12345)  # a .safetensors file: served as an LFS file
# Past huggingface_hub's 10 MiB read size, so that a break after it leaves a whole chunk to resume from.
LARGE = os.urandom(constants.DOWNLOAD_CHUNK_SIZE + MIB)

SMALL = HubRepo({"config.json": CONFIG, "tokenizer.json": TOKENIZER, "model.safetensors": WEIGHTS})
REPOS = {
    "org/small": SMALL,
    "org/large": HubRepo({"config.json": CONFIG, "model.safetensors": LARGE}),
    "org/gated": HubRepo({"config.json": CONFIG, "sub/weights.bin": WEIGHTS}, gated=True, token="hf_open_sesame"),
    "org/hostile": HubRepo({"config.json": CONFIG, "../escape.txt": b"out", "/etc/switchyard-hub-test": b"out"}),
}


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalHub]:
    """A running hub that huggingface_hub talks to, online, with HF_HOME under tmp_path and no ambient token."""
    with LocalHub(REPOS) as running:
        use_local_hub(monkeypatch, running, tmp_path / "hf-home")
        try:
            yield running
        finally:
            close_session()  # the client's pooled keep-alive connections to this hub
        assert running.errors == []


@pytest.fixture
def no_retry_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub waits a second before it resumes a broken body; the waits add nothing to these tests."""
    monkeypatch.setattr(file_download, "time", types.SimpleNamespace(sleep=lambda seconds: None))


def test_the_client_is_online_and_isolated(hub: LocalHub, tmp_path: Path) -> None:
    assert not constants.is_offline_mode()
    assert hub.url == constants.ENDPOINT
    assert Path(constants.HF_HUB_CACHE).is_relative_to(tmp_path)
    assert constants.HF_HUB_DISABLE_XET


def test_snapshot_download_into_a_local_dir_gives_identical_bytes(hub: LocalHub, tmp_path: Path) -> None:
    target = tmp_path / "model"
    assert snapshot_download("org/small", local_dir=target) == str(target)
    for name, content in SMALL.files.items():
        assert (target / name).read_bytes() == content
        assert hub.requests_for(name, repo_id="org/small") == [None]  # one whole-file GET each


def test_model_info_reports_sizes_lfs_and_the_commit(hub: LocalHub) -> None:
    api = HfApi()
    info = api.model_info("org/small", files_metadata=True)
    assert info.sha == SMALL.sha
    assert info.siblings is not None
    siblings = {sibling.rfilename: sibling for sibling in info.siblings}
    assert {name: sibling.size for name, sibling in siblings.items()} == {
        name: len(content) for name, content in SMALL.files.items()
    }
    weights_lfs = siblings["model.safetensors"].lfs
    assert weights_lfs is not None
    assert weights_lfs.sha256 == hashlib.sha256(WEIGHTS).hexdigest()
    assert weights_lfs.size == len(WEIGHTS)
    assert siblings["config.json"].lfs is None

    plain = api.model_info("org/small")
    assert plain.siblings is not None
    assert [sibling.size for sibling in plain.siblings] == [None, None, None]
    assert api.repo_info("org/small", revision=SMALL.sha).sha == SMALL.sha


def test_the_commit_sha_resolves_like_main(hub: LocalHub, tmp_path: Path) -> None:
    path = hf_hub_download("org/small", "model.safetensors", revision=SMALL.sha, local_dir=tmp_path / "pinned")
    assert Path(path).read_bytes() == WEIGHTS
    cached = hf_hub_download("org/small", "config.json")  # the cache under HF_HOME, not a local dir
    assert Path(cached).is_relative_to(tmp_path / "hf-home") and Path(cached).read_bytes() == CONFIG


@pytest.mark.usefixtures("no_retry_wait")
@pytest.mark.parametrize("download", ["hf_hub_download", "snapshot_download"])
def test_a_cut_download_resumes_with_a_range_request(hub: LocalHub, tmp_path: Path, download: str) -> None:
    chunk = constants.DOWNLOAD_CHUNK_SIZE
    hub.cut_after("model.safetensors", chunk + 4096)
    target = tmp_path / "model"
    if download == "hf_hub_download":
        hf_hub_download("org/large", "model.safetensors", local_dir=target)
    else:
        snapshot_download("org/large", local_dir=target)
    assert (target / "model.safetensors").read_bytes() == LARGE
    # The client keeps whole read chunks only: the 4096 bytes past the first chunk are fetched again.
    assert hub.requests_for("model.safetensors") == [None, f"bytes={chunk}-"]


@pytest.mark.usefixtures("no_retry_wait")
def test_a_download_that_keeps_breaking_fails_and_a_later_call_completes_it(hub: LocalHub, tmp_path: Path) -> None:
    chunk = constants.DOWNLOAD_CHUNK_SIZE
    hub.cut_after("model.safetensors", chunk + 4096, times=1_000)
    target = tmp_path / "model"
    with pytest.raises(httpx2.RemoteProtocolError):
        hf_hub_download("org/large", "model.safetensors", local_dir=target)
    broken = hub.requests_for("model.safetensors")
    assert broken[0] is None and len(broken) > 1 and set(broken[1:]) == {f"bytes={chunk}-"}
    assert not (target / "model.safetensors").exists()
    assert list(target.rglob("*.incomplete")) == []  # huggingface_hub 2.4.0 drops the partial file on failure

    hub.clear_cuts()
    path = hf_hub_download("org/large", "model.safetensors", local_dir=target)
    assert Path(path).read_bytes() == LARGE
    assert hub.requests_for("model.safetensors")[len(broken) :] == [None]  # so the next call starts over


def test_a_gated_repo_needs_its_token(hub: LocalHub, tmp_path: Path) -> None:
    assert HfApi().model_info("org/gated", token=False).gated == "auto"  # the metadata is public, as on the Hub
    with pytest.raises(GatedRepoError) as anonymous:
        snapshot_download("org/gated", local_dir=tmp_path / "anonymous", token=False)
    assert anonymous.value.response.status_code == 401
    with pytest.raises(GatedRepoError) as stranger:
        hf_hub_download("org/gated", "config.json", local_dir=tmp_path / "stranger", token="hf_wrong")
    assert stranger.value.response.status_code == 403
    assert hub.requests_for("config.json", repo_id="org/gated") == []

    target = tmp_path / "granted"
    snapshot_download("org/gated", local_dir=target, token="hf_open_sesame")
    assert (target / "sub" / "weights.bin").read_bytes() == WEIGHTS


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda target: HfApi().model_info("org/missing"), RepositoryNotFoundError),
        (lambda target: snapshot_download("org/missing", local_dir=target), RepositoryNotFoundError),
        (lambda target: hf_hub_download("org/missing", "config.json", local_dir=target), RepositoryNotFoundError),
        (lambda target: hf_hub_download("org/small", "missing.json", local_dir=target), RemoteEntryNotFoundError),
        (lambda target: snapshot_download("org/small", revision="v2", local_dir=target), RevisionNotFoundError),
    ],
    ids=["model_info", "snapshot", "file-of-missing-repo", "missing-file", "missing-revision"],
)
def test_what_is_not_there_raises_the_hub_errors(
    hub: LocalHub, tmp_path: Path, call: Callable[[Path], object], error: type[Exception]
) -> None:
    with pytest.raises(error) as raised:
        call(tmp_path / "model")
    assert not isinstance(raised.value, GatedRepoError)  # a subclass of RepositoryNotFoundError


def test_hostile_names_are_listed_and_the_client_refuses_them(hub: LocalHub, tmp_path: Path) -> None:
    info = HfApi().model_info("org/hostile")
    assert info.siblings is not None
    assert {sibling.rfilename for sibling in info.siblings} >= {"../escape.txt", "/etc/switchyard-hub-test"}
    target = tmp_path / "nested" / "model"
    with pytest.raises(ValueError, match="Invalid filename"):
        snapshot_download("org/hostile", local_dir=target)
    assert not (tmp_path / "nested" / "escape.txt").exists()
    assert hub.requests_for("../escape.txt") == hub.requests_for("/etc/switchyard-hub-test") == []


def test_progress_reaches_a_tqdm_class_per_read_chunk(
    hub: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 256 * 1024)  # the client reads, and reports, per chunk
    hub.delay_per_chunk = 0.001
    seen: list[tuple[str, float | None, float]] = []

    class Recorder(tqdm):  # type: ignore[type-arg]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(file=io.StringIO(), **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            seen.append((self.desc, self.total, self.n))
            return shown

    hf_hub_download("org/small", "model.safetensors", local_dir=tmp_path / "model", tqdm_class=Recorder)
    assert [n for _, _, n in seen] == [min(i * 256 * 1024, len(WEIGHTS)) for i in range(1, 6)]
    assert {(desc, total) for desc, total, _ in seen} == {("model.safetensors", len(WEIGHTS))}


def test_two_concurrent_pulls_fetch_each_file_once(hub: LocalHub, tmp_path: Path) -> None:
    hub.delay_per_chunk = 0.002  # slow enough for the two pulls to overlap
    cache = tmp_path / "shared-cache"
    failures: list[BaseException] = []

    def pull() -> None:
        try:
            snapshot_download("org/small", cache_dir=cache)
        except BaseException as error:
            failures.append(error)

    pulls = [threading.Thread(target=pull) for _ in range(2)]
    for thread in pulls:
        thread.start()
    for thread in pulls:
        thread.join()
    assert failures == []
    for name in SMALL.files:
        assert hub.requests_for(name) == [None]
    snapshot = cache / "models--org--small" / "snapshots" / SMALL.sha
    assert (snapshot / "model.safetensors").read_bytes() == WEIGHTS
