"""One pull from the Hugging Face hub, as a process of its own (``python -m
switchyard.engine.pull_worker``): its job arrives as JSON on stdin, progress leaves as JSON
lines on stdout, the last one ``{"event": "done", ...}`` or ``{"event": "error", ...}``.

A process, so that cancelling a pull is stopping it, and the hashing and writing never take the
engine service's event loop or GIL. The HTTP is huggingface_hub's: ``model_info`` lists the
files, ``http_get`` fetches each with its auth headers, retries and Range resume. Files are
written to a staging folder as ``NAME.part``; a later attempt (or a retry after a cut
connection) resumes each from its size. When every file is there and checked, they move into
the model's folder and the marker is written last, so nothing half-written is ever listed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import filelock
import httpx2  # huggingface_hub's HTTP client
from huggingface_hub import HfApi, constants, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import http_get
from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]  # lazily re-exported
from tqdm import tqdm

from switchyard.engine.hub import (
    ModelRef,
    check_commit,
    check_sha256,
    check_size,
    destination,
    model_path,
    pick_files,
    read_marker,
    write_marker,
)
from switchyard.errors import EngineError, FailedPrecondition, InsufficientStorage, Unavailable

ATTEMPTS = 3  # per file; each resumes from what the last one wrote
CHUNK_BYTES = 1024 * 1024  # huggingface_hub reads, writes and reports in chunks of this size
REPORT_EVERY_S = 0.25
STORAGE_MARGIN = 64 * 1024 * 1024  # keep this much free beyond the download


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


class Progress:
    """How much of the pull is on disk (complete files and the part being written), reported
    at most every REPORT_EVERY_S; reading the part's size after each chunk keeps it right
    across retries."""

    def __init__(self, total: int, files: int, complete: int) -> None:
        self.total, self.files = total, files
        self.complete = complete  # bytes of the files already complete
        self.files_done = 0
        self.part: Path | None = None
        self._last_report = 0.0
        self._samples: list[tuple[float, int]] = []

    def done(self) -> int:
        return self.complete + (_size(self.part) if self.part is not None else 0)

    def tick(self) -> None:
        if time.monotonic() - self._last_report >= REPORT_EVERY_S:
            self.report()

    def report(self) -> None:
        now, done = time.monotonic(), self.done()
        self._last_report = now
        self._samples = [*self._samples[-20:], (now, done)]
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        emit(
            {
                "event": "progress",
                "state": "downloading",
                "bytes_done": done,
                "bytes_total": self.total,
                "files_done": self.files_done,
                "files_total": self.files,
                "bytes_per_second": (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0,
                "current_file": self.part.name.removesuffix(".part") if self.part is not None else "",
            }
        )

    def bar(self) -> type[tqdm]:  # type: ignore[type-arg]
        """A tqdm class for huggingface_hub that ticks this progress instead of drawing."""
        progress = self

        class Bar(tqdm):  # type: ignore[type-arg]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs["disable"] = True
                super().__init__(*args, **kwargs)

            def update(self, n: float | None = 1) -> bool | None:
                progress.tick()
                return None

        return Bar


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def _fetch(url: str, token: str | None, size: int, sha256: str | None, part: Path, progress: Progress) -> None:
    """One file into ``part``, resuming from what is there; checked against size and sha256."""
    headers = build_hf_headers(token=token)
    name = part.name.removesuffix(".part")
    for attempt in range(1, ATTEMPTS + 1):
        have = _size(part)
        if have > size:  # not ours: start over
            part.unlink()
            have = 0
        try:
            with part.open("ab") as out:
                http_get(url, out, resume_size=have, headers=headers, expected_size=size, tqdm_class=progress.bar())
            break
        except (HfHubHTTPError, httpx2.TransportError, OSError) as exc:
            if isinstance(exc, HfHubHTTPError) and exc.response is not None and exc.response.status_code < 500:
                raise
            if attempt == ATTEMPTS:
                raise Unavailable(f"downloading {name} failed after {ATTEMPTS} attempts: {exc}") from exc
    if _size(part) != size:
        raise Unavailable(f"{name} arrived with {_size(part)} bytes, not {size}")
    if sha256 is not None:
        digest = hashlib.sha256()
        with part.open("rb") as data:
            while block := data.read(CHUNK_BYTES):
                digest.update(block)
        if digest.hexdigest() != sha256:
            part.unlink()
            raise Unavailable(f"{name} does not match the hub's checksum; it was removed, pull again")


def pull(job: dict[str, Any]) -> dict[str, Any]:
    """Resolve, then download under a lock per model (replicas on a shared volume, and a
    second pull, wait for the first); the result event's fields. A failure removes what it
    staged, unless it was the network's: then the next try resumes."""
    ref = ModelRef.parse(job["model"])
    root, engine = Path(job["root"]), int(job["engine"])
    emit({"event": "progress", "state": "resolving"})
    token = job.get("token") or None
    info = HfApi(token=token).model_info(ref.repo, revision=job.get("revision") or None, files_metadata=True)
    sha = check_commit(info.sha)
    siblings = {s.rfilename: s for s in info.siblings or []}
    files = pick_files(list(siblings), engine, ref.quant, job.get("include", []), job.get("exclude", []))  # type: ignore[arg-type]
    folder = destination(root, ref)
    target = model_path(folder, files, engine)  # type: ignore[arg-type]
    sizes = {name: check_size(name, siblings[name].size or 0) for name in files}
    checksums = {name: check_sha256(name, lfs.sha256 if (lfs := siblings[name].lfs) else None) for name in files}
    result = {"model_path": str(target), "name": ref.name, "revision": sha, "bytes": sum(sizes.values())}
    # one staging folder per model, engine and commit: pulls of other files never share it
    key = f"{ref.repo.replace('/', '--')}--{ref.quant or 'all'}--{engine}--{sha[:12]}"
    partial = root / ".switchyard-partial"
    staging = partial / key
    if staging.parent != partial or key in ("", ".", ".."):  # the checks above make this impossible; keep it so
        raise FailedPrecondition(f"refusing a staging folder outside {partial}: {key!r}")
    partial.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(staging) + ".lock")
    while True:
        try:
            lock.acquire(timeout=1)
            break
        except filelock.Timeout:
            emit({"event": "progress", "state": "waiting"})
    staging.mkdir(exist_ok=True)
    emit({"event": "staging", "path": str(staging)})
    try:
        record = read_marker(target) if target.exists() else None
        here = record is not None and record.get("revision") == sha
        if here and all(_size(folder / name) == sizes[name] for name in files):
            if record is not None and record.get("name") != ref.name:  # listed under the name asked last
                write_marker(target, {**record, "name": ref.name})
            return result  # already here, whole
        _download(ref.repo, sha, token, sizes, checksums, staging, root)
        for name in files:
            final = folder / name
            final.parent.mkdir(parents=True, exist_ok=True)
            (staging / (name + ".part")).replace(final)
        write_marker(target, {"name": ref.name, "repo": ref.repo, "revision": sha, "files": files, "engine": engine})
        shutil.rmtree(staging, ignore_errors=True)
        return result
    except Exception:
        if not _transient(sys.exc_info()[1]):  # a network failure keeps its parts: the next try resumes
            shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        lock.release()


def _download(
    repo: str,
    sha: str,
    token: str | None,
    sizes: dict[str, int],
    sha256: dict[str, str | None],
    staging: Path,
    root: Path,
) -> None:
    """Every file into ``staging`` as NAME.part, after checking the disk has room for it."""
    parts = {name: staging / (name + ".part") for name in sizes}
    total = sum(sizes.values())
    need = total - sum(min(_size(part), sizes[name]) for name, part in parts.items())
    free = shutil.disk_usage(root).free
    if need + STORAGE_MARGIN > free:
        raise InsufficientStorage(
            f"the pull needs {need / 2**30:.2f} GiB more; {free / 2**30:.2f} GiB are free in {root}"
        )
    progress = Progress(total, len(sizes), complete=0)
    for name, part in parts.items():
        part.parent.mkdir(parents=True, exist_ok=True)
        progress.part = part
        _fetch(hf_hub_url(repo, name, revision=sha), token, sizes[name], sha256[name], part, progress)
        progress.complete += sizes[name]
        progress.files_done += 1
        progress.part = None
        progress.report()


def _transient(exc: BaseException | None) -> bool:
    return isinstance(exc, Exception) and _error(exc)[0] == "UNAVAILABLE"


def _error(exc: Exception) -> tuple[str, str, str]:
    """(gRPC code name, message, reason) for what went wrong."""
    if isinstance(exc, EngineError):
        return exc.code.name, str(exc), exc.reason
    if isinstance(exc, GatedRepoError):
        return "PERMISSION_DENIED", "the repository is gated: accept its terms on the hub and set HF_TOKEN", ""
    if isinstance(exc, RevisionNotFoundError):
        return "NOT_FOUND", "no such revision in the repository", ""
    if isinstance(exc, RepositoryNotFoundError):
        return "NOT_FOUND", "no such repository on the hub (or it is private and the token cannot see it)", ""
    if isinstance(exc, EntryNotFoundError):
        return "NOT_FOUND", f"a file of the repository is missing on the hub: {exc}", ""
    if isinstance(exc, OfflineModeIsEnabled):
        return "FAILED_PRECONDITION", "offline mode (HF_HUB_OFFLINE) is on: nothing can be pulled", ""
    if isinstance(exc, HfHubHTTPError) and exc.response is not None and exc.response.status_code in (401, 403):
        return "PERMISSION_DENIED", f"the hub refused the pull ({exc.response.status_code}): check HF_TOKEN", ""
    if isinstance(exc, HfHubHTTPError | httpx2.TransportError | OSError | ValueError):
        return "UNAVAILABLE", f"the hub could not be reached or answered wrongly: {exc}", ""
    return "INTERNAL", f"the pull failed: {type(exc).__name__}: {exc}", ""


def main() -> None:
    constants.DOWNLOAD_CHUNK_SIZE = CHUNK_BYTES
    job = json.loads(sys.stdin.read())
    try:
        emit({"event": "done", **pull(job)})
    except Exception as exc:
        code, message, reason = _error(exc)
        if code == "INTERNAL":
            traceback.print_exc()  # to stderr: the service logs it
        emit({"event": "error", "code": code, "message": message, "reason": reason})
        sys.exit(1)


if __name__ == "__main__":
    main()
