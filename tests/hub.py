"""A local Hugging Face Hub for tests: the real ``huggingface_hub`` client downloads from it, offline.

It answers the calls ``huggingface_hub`` 2.4.0 makes for model repositories:

- ``GET /api/models/{repo_id}`` and ``GET /api/models/{repo_id}/revision/{revision}``: ``model_info`` / ``repo_info``
  (``?blobs=true`` adds each sibling's ``size``, ``blobId`` and ``lfs``);
- ``GET /api/models/{repo_id}/tree/{revision}[/{path}]?recursive=...``: ``list_repo_tree``, which
  ``snapshot_download`` uses to list the files it fetches;
- ``HEAD`` and ``GET /{repo_id}/resolve/{revision}/{filename}``: the file, with the ``ETag`` / ``X-Linked-Etag``,
  ``X-Linked-Size``, ``X-Repo-Commit`` and ``Content-Length`` headers the client needs, and ``Range`` requests.

It never sends the ``X-Xet-*`` headers nor a tree ``xetHash``, so the client always takes the plain HTTP path even
where ``hf_xet`` is installed. Errors carry the ``X-Error-Code`` / ``X-Error-Message`` headers the Hub sends, which
is what the client turns into ``RepositoryNotFoundError``, ``RevisionNotFoundError``, ``EntryNotFoundError`` and
``GatedRepoError``. Dataset and Space repositories are not served.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import socketserver
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, quote, unquote, urlsplit

if TYPE_CHECKING:
    import pytest

# Files the Hub's default .gitattributes stores in LFS, and the size above which it asks for LFS anyway.
LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".ckpt", ".h5", ".onnx", ".msgpack", ".model", ".zip")
LFS_MIN_SIZE = 10 * 1024 * 1024
CHUNK_SIZE = 64 * 1024
_COMMIT_DATE = "2024-01-01T00:00:00.000Z"
_SHA_RE = re.compile(r"[0-9a-f]{40}")
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")


def git_blob_sha(content: bytes) -> str:
    """The git object id of a blob: what the Hub reports as ``blobId`` / ``oid``."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(content: bytes) -> bytes:
    """The git-lfs pointer file the repository holds in place of a large file."""
    oid = hashlib.sha256(content).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(content)}\n".encode()


def is_lfs(name: str, content: bytes) -> bool:
    """Whether the Hub would keep this file in LFS (the client then sees a sha256 ETag and ``lfs`` metadata)."""
    return name.endswith(LFS_SUFFIXES) or len(content) >= LFS_MIN_SIZE


@dataclass
class HubRepo:
    """A model repository at one commit: its files by repo path (names may contain '/', or be hostile)."""

    files: dict[str, bytes]
    sha: str = ""  # the commit id; derived from the files when left empty
    gated: bool = False  # files need ``Authorization: Bearer <token>``; the metadata stays public, as on the Hub
    token: str | None = None  # the one token that opens a gated repository (None: nothing does)
    # Sizes the listing reports instead of the real ones (a file too big for the disk, say).
    listed_sizes: dict[str, int] = field(default_factory=dict)
    # A hostile hub: the commit id its API claims instead of ``sha`` (any text), the LFS sha256 it claims per
    # file, and files whose download answers a redirect to this location instead of the content.
    listed_sha: str = ""
    listed_lfs_sha256: dict[str, str] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.sha:
            listing = "".join(f"{name}\0{git_blob_sha(data)}\n" for name, data in sorted(self.files.items()))
            self.sha = hashlib.sha1(listing.encode()).hexdigest()
        if not _SHA_RE.fullmatch(self.sha):
            raise ValueError(f"a commit sha is 40 lowercase hex digits, not {self.sha!r}")
        self.listed_sha = self.listed_sha or self.sha


@dataclass(frozen=True)
class _Blob:
    """One file with the ids the Hub reports for it, computed once rather than per request."""

    name: str
    content: bytes
    blob_id: str  # git sha1 of the content, or of the LFS pointer
    lfs_sha256: str | None
    pointer_size: int | None
    listed_size: int  # what the listing says; the content's length unless a test says otherwise

    @classmethod
    def of(cls, name: str, content: bytes, listed_size: int | None = None, listed_sha256: str | None = None) -> _Blob:
        size = len(content) if listed_size is None else listed_size
        if is_lfs(name, content):
            pointer = lfs_pointer(content)
            sha256 = listed_sha256 or hashlib.sha256(content).hexdigest()
            return cls(name, content, git_blob_sha(pointer), sha256, len(pointer), size)
        return cls(name, content, git_blob_sha(content), None, None, size)

    @property
    def etag(self) -> str:
        return self.lfs_sha256 or self.blob_id

    def sibling(self, with_metadata: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {"rfilename": self.name}
        if with_metadata:
            entry.update(blobId=self.blob_id, size=self.listed_size)
            if self.lfs_sha256 is not None:
                entry["lfs"] = {"sha256": self.lfs_sha256, "size": self.listed_size, "pointerSize": self.pointer_size}
        return entry

    def tree_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": self.blob_id, "size": self.listed_size, "path": self.name}
        if self.lfs_sha256 is not None:
            entry["lfs"] = {"oid": self.lfs_sha256, "size": self.listed_size, "pointerSize": self.pointer_size}
        return entry


@dataclass(frozen=True)
class _Published:
    repo: HubRepo
    blobs: dict[str, _Blob]


@dataclass
class _Cut:
    nbytes: int
    times: int


class _HubError(Exception):
    """An error answer, shaped like the Hub's so the client raises the matching exception."""

    def __init__(
        self, status: HTTPStatus, code: str | None, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


@dataclass
class _Reply:
    status: HTTPStatus
    headers: dict[str, str]
    body: bytes = b""
    cut_at: int | None = None  # stop after this many body bytes and drop the connection
    streamed: bool = False  # a file body: sent in chunks, with the hub's delay between them
    length: int | None = None  # Content-Length when it is not the body's (a HEAD)


class LocalHub:
    """Serves ``repos`` on 127.0.0.1 at an ephemeral port, from a background thread, until stopped.

    Test hooks: ``cut_after`` breaks the next download(s) of a file part way, ``requests_for`` tells which GETs a
    file got and with which ``Range`` header, ``delay_per_chunk`` slows file bodies down so that progress and
    concurrency can be observed.
    """

    def __init__(
        self,
        repos: Mapping[str, HubRepo],
        *,
        delay_per_chunk: float = 0.0,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.delay_per_chunk = delay_per_chunk
        self.chunk_size = chunk_size
        self.log: list[tuple[str, str]] = []  # (method, path) of every request, in arrival order
        self.errors: list[BaseException] = []  # unexpected exceptions in the request handlers
        self._lock = threading.Lock()
        self._repos: dict[str, _Published] = {}
        self._cuts: dict[tuple[str | None, str], _Cut] = {}
        self._gets: list[tuple[str, str, str | None]] = []  # (repo_id, filename, Range header) of served GETs
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        for repo_id, repo in repos.items():
            self.publish(repo_id, repo)

    # -- lifecycle ---------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The endpoint to hand ``huggingface_hub`` (``endpoint=`` or ``HF_ENDPOINT``)."""
        if self._server is None:
            raise RuntimeError("the hub is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalHub:
        if self._server is not None:
            raise RuntimeError("the hub is already started")
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="local-hub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, and end the open connections (a slow download in flight breaks off)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        server.drop_connections()
        server.server_close()
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- content and test hooks ----------------------------------------------------------------------------------

    def publish(self, repo_id: str, repo: HubRepo) -> None:
        """Add a repository, or replace it (a new commit), while the hub runs or before."""
        blobs = {
            name: _Blob.of(name, data, repo.listed_sizes.get(name), repo.listed_lfs_sha256.get(name))
            for name, data in repo.files.items()
        }
        with self._lock:
            self._repos[repo_id] = _Published(repo, blobs)

    def cut_after(self, filename: str, nbytes: int, *, times: int = 1, repo_id: str | None = None) -> None:
        """Break the next ``times`` GETs of ``filename``: each stops once the client holds the file's first
        ``nbytes`` bytes (a GET whose Range starts there or later gets none of the body), then the connection
        closes before the promised ``Content-Length`` is reached.

        ``huggingface_hub`` retries such a broken body itself with a Range request (five times in a row without
        progress, a second apart), so ``times=1`` shows a resume within one call and a large ``times`` makes the
        call fail. It resumes from the last whole read chunk it wrote (``constants.DOWNLOAD_CHUNK_SIZE``, 10 MiB):
        cut past that size to see a ``Range`` header, and expect the bytes after the last chunk to be sent again.
        """
        with self._lock:
            self._cuts[(repo_id, filename)] = _Cut(nbytes, times)

    def clear_cuts(self) -> None:
        with self._lock:
            self._cuts.clear()

    def requests_for(self, filename: str, repo_id: str | None = None) -> list[str | None]:
        """The ``Range`` header (None when absent) of each GET that served ``filename``, in order."""
        with self._lock:
            return [rng for rid, name, rng in self._gets if name == filename and repo_id in (None, rid)]

    # -- request handling (called from the server's threads) -----------------------------------------------------

    def _answer(self, method: str, raw_path: str, headers: Mapping[str, str]) -> _Reply:
        with self._lock:
            self.log.append((method, raw_path))
        split = urlsplit(raw_path)
        query = {key: values[-1] for key, values in parse_qs(split.query).items()}
        try:
            if split.path.startswith("/api/models/"):
                if method != "GET":
                    raise _HubError(HTTPStatus.METHOD_NOT_ALLOWED, None, "Method not allowed")
                return self._api(split.path.removeprefix("/api/models/").split("/"), query)
            return self._resolve(method, split.path.removeprefix("/").split("/"), headers)
        except _HubError as err:
            body = json.dumps({"error": err.message}).encode()
            extra = {"Content-Type": "application/json; charset=utf-8", **err.headers}
            if err.code is not None:
                extra["X-Error-Code"] = err.code
            extra["X-Error-Message"] = err.message
            return _Reply(err.status, extra, body)

    def _find(self, segments: list[str], marker: str | None) -> tuple[str, _Published, list[str]]:
        """Split ``namespace/name/<marker>/rest`` or ``name/<marker>/rest`` into the repo and what follows."""
        for width in (2, 1):
            repo_id = "/".join(segments[:width])
            rest = segments[width:]
            if len(segments) >= width and (marker is None or rest[:1] == [marker]):
                with self._lock:
                    published = self._repos.get(repo_id)
                if published is not None:
                    return repo_id, published, rest
        raise _HubError(HTTPStatus.NOT_FOUND, "RepoNotFound", "Repository not found")

    @staticmethod
    def _check_revision(published: _Published, revision: str) -> None:
        if revision not in ("main", published.repo.sha, published.repo.listed_sha):
            raise _HubError(HTTPStatus.NOT_FOUND, "RevisionNotFound", f"Invalid rev id: {revision}")

    def _api(self, segments: list[str], query: Mapping[str, str]) -> _Reply:
        repo_id, published, rest = self._find(segments, None)
        repo = published.repo
        if rest[:1] == ["revision"] and len(rest) == 2:
            self._check_revision(published, unquote(rest[1]))
        elif rest[:1] == ["tree"] and len(rest) >= 2:
            self._check_revision(published, unquote(rest[1]))
            return _json(self._tree(published, unquote("/".join(rest[2:])), query.get("recursive") == "true"))
        elif rest:
            raise _HubError(HTTPStatus.NOT_FOUND, None, "Not found")
        with_metadata = query.get("blobs") == "true"
        namespace, _, _ = repo_id.rpartition("/")
        return _json(
            {
                "_id": repo.sha[:24],
                "id": repo_id,
                "modelId": repo_id,
                "author": namespace or None,
                "sha": repo.listed_sha,
                "lastModified": _COMMIT_DATE,
                "createdAt": _COMMIT_DATE,
                "private": False,
                "gated": "auto" if repo.gated else False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": [blob.sibling(with_metadata) for blob in published.blobs.values()],
                **({"usedStorage": sum(len(b.content) for b in published.blobs.values())} if with_metadata else {}),
            }
        )

    @staticmethod
    def _tree(published: _Published, path: str, recursive: bool) -> list[dict[str, Any]]:
        prefix = f"{path}/" if path else ""
        entries: list[dict[str, Any]] = []
        folders: set[str] = set()
        for blob in published.blobs.values():
            if not blob.name.startswith(prefix):
                continue
            parts = blob.name[len(prefix) :].split("/")
            depths = range(1, len(parts)) if recursive else range(1, min(len(parts), 2))
            for depth in depths:
                folder = prefix + "/".join(parts[:depth])
                if parts[depth - 1] and folder not in folders:
                    folders.add(folder)
                    oid = hashlib.sha1(f"tree {published.repo.sha} {folder}".encode()).hexdigest()
                    entries.append({"type": "directory", "oid": oid, "size": 0, "path": folder})
            if recursive or len(parts) == 1:
                entries.append(blob.tree_entry())
        if path and not entries:
            raise _HubError(HTTPStatus.NOT_FOUND, "EntryNotFound", f"{path} does not exist on main")
        return entries

    def _resolve(self, method: str, segments: list[str], headers: Mapping[str, str]) -> _Reply:
        if method not in ("GET", "HEAD"):
            raise _HubError(HTTPStatus.METHOD_NOT_ALLOWED, None, "Method not allowed")
        repo_id, published, rest = self._find(segments, "resolve")
        if len(rest) < 3:
            raise _HubError(HTTPStatus.NOT_FOUND, None, "Not found")
        revision, filename = unquote(rest[1]), unquote("/".join(rest[2:]))
        self._check_revision(published, revision)
        repo = published.repo
        if repo.gated:
            sent = headers.get("Authorization")
            if sent is None:
                raise _HubError(
                    HTTPStatus.UNAUTHORIZED,
                    "GatedRepo",
                    f"Access to model {repo_id} is restricted. You must have access to it and be authenticated to"
                    " access it. Please log in.",
                )
            if repo.token is None or sent != f"Bearer {repo.token}":
                raise _HubError(
                    HTTPStatus.FORBIDDEN,
                    "GatedRepo",
                    f"Access to model {repo_id} is restricted and you are not in the authorized list. Visit"
                    f" https://huggingface.co/{repo_id} to ask for access.",
                )
        blob = published.blobs.get(filename)
        if filename in repo.redirects:
            return _Reply(HTTPStatus.FOUND, {"Location": repo.redirects[filename], "X-Repo-Commit": repo.listed_sha})
        if blob is None:
            raise _HubError(HTTPStatus.NOT_FOUND, "EntryNotFound", "Entry not found", {"X-Repo-Commit": repo.sha})
        return self._file_reply(method, repo_id, repo, blob, headers.get("Range"))

    def _file_reply(self, method: str, repo_id: str, repo: HubRepo, blob: _Blob, range_header: str | None) -> _Reply:
        size = len(blob.content)
        basename = blob.name.rsplit("/", 1)[-1]
        reply_headers = {
            "Content-Type": "application/octet-stream",
            "ETag": f'"{blob.etag}"',
            "X-Repo-Commit": repo.sha,
            "Accept-Ranges": "bytes",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(basename)}; filename=\"{quote(basename)}\";",
        }
        if blob.lfs_sha256 is not None:
            reply_headers["X-Linked-Etag"] = f'"{blob.lfs_sha256}"'
            reply_headers["X-Linked-Size"] = str(size)
        span = _parse_range(range_header, size)
        if span is not None and not span:
            reply_headers["Content-Range"] = f"bytes */{size}"
            return _Reply(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, reply_headers)
        status = HTTPStatus.OK
        start, end = 0, size
        if span is not None:
            start, end = span.start, span.stop
            status = HTTPStatus.PARTIAL_CONTENT
            reply_headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        if method == "HEAD":
            return _Reply(status, reply_headers, length=end - start)
        cut_at: int | None = None
        with self._lock:
            self._gets.append((repo_id, blob.name, range_header))
            cut = self._cuts.get((repo_id, blob.name)) or self._cuts.get((None, blob.name))
            if cut is not None:
                cut_at = max(0, min(end, cut.nbytes) - start)
                cut.times -= 1
                if cut.times <= 0:
                    self._cuts = {key: value for key, value in self._cuts.items() if value is not cut}
        return _Reply(status, reply_headers, blob.content[start:end], cut_at=cut_at, streamed=True)

    def _chunks(self, body: bytes) -> Iterator[bytes]:
        """The body in chunks, pausing ``delay_per_chunk`` after each; ends early when the hub stops."""
        for offset in range(0, len(body), self.chunk_size):
            if self._stopping.is_set():
                return
            yield body[offset : offset + self.chunk_size]
            if self.delay_per_chunk > 0 and offset + self.chunk_size < len(body):
                self._stopping.wait(self.delay_per_chunk)


def _json(payload: object) -> _Reply:
    return _Reply(HTTPStatus.OK, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(payload).encode())


def _parse_range(header: str | None, size: int) -> range | None:
    """The bytes a single ``Range`` asks for (empty when unsatisfiable), or None to send the whole file."""
    if header is None:
        return None
    match = _RANGE_RE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None  # multiple or malformed ranges: ignored, as a server may
    first, last = match.groups()
    if first == "":
        return range(max(0, size - int(last)), size)
    start = int(first)
    end = size if last == "" else min(size, int(last) + 1)
    return range(start, end) if start < size else range(0)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as the client's connection pool expects."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        hub = self.server.hub
        reply = hub._answer(method, self.path, cast("Mapping[str, str]", self.headers))
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body) if reply.length is None else reply.length))
        self.end_headers()
        if method == "HEAD":
            return
        body = reply.body if reply.cut_at is None else reply.body[: reply.cut_at]
        try:
            for chunk in hub._chunks(body) if reply.streamed else iter((body,)):
                self.wfile.write(chunk)
                self.wfile.flush()
        except ConnectionError:
            self.close_connection = True  # the client went away mid-body: nothing more to send
            return
        if reply.cut_at is not None or hub._stopping.is_set():
            self.close_connection = True  # short of Content-Length: the client sees a broken body

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the hub's ``log`` keeps what tests need."""


class _Server(ThreadingHTTPServer):
    """Keeps the open connections, so that ``stop`` can end keep-alive ones a client still holds."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], hub: LocalHub) -> None:
        self.hub = hub
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the address (slow on machines with no resolver)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._open_lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, ConnectionError):
            self.hub.errors.append(error)


def use_local_hub(monkeypatch: pytest.MonkeyPatch, hub: LocalHub, home: Path) -> None:
    """Point ``huggingface_hub`` (already imported) at ``hub``, online, with ``home`` as HF_HOME and no token.

    ``huggingface_hub.constants`` reads its environment once, at import: setting HF_ENDPOINT, HF_HOME,
    HF_HUB_OFFLINE or HF_HUB_DISABLE_XET afterwards changes nothing in this process, so the constants are patched
    too. The environment is set as well, for child processes and for what is read per call (HF_TOKEN).
    """
    from huggingface_hub import constants

    home.mkdir(parents=True, exist_ok=True)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ASSETS_CACHE", "HF_TOKEN_PATH", "HF_XET_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    patched: dict[str, object] = {
        "ENDPOINT": hub.url,
        "HUGGINGFACE_CO_URL_TEMPLATE": hub.url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HUGGINGFACE_HUB_CACHE": str(home / "hub"),
        "HF_ASSETS_CACHE": str(home / "assets"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
    }
    for name, value in patched.items():
        monkeypatch.setattr(constants, name, value)
