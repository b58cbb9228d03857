"""Confine model paths to the configured model roots.

The seed loaded any filesystem path; here a path must resolve (symlinks and ``..`` followed)
to a location inside one of the roots, or it is refused before anything touches it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from switchyard.engine.hub import read_marker
from switchyard.errors import InvalidArgument, NotFound, PermissionDenied
from switchyard.v1 import common_pb2, control_pb2

MAX_PATH_BYTES = 4096  # PATH_MAX on Linux
MAX_COMPONENT_BYTES = 255  # NAME_MAX


def _resolved(path: Path) -> Path | None:
    """``path`` with symlinks and ``..`` followed; None when that fails (a symlink loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: Python 3.11's "Symlink loop"
        return None


def _check_shape(path: str) -> None:
    if not path.strip():
        raise InvalidArgument("model_path is empty")
    if "\x00" in path:
        raise InvalidArgument("model_path contains a NUL byte")
    encoded = path.encode(errors="surrogatepass")
    if len(encoded) > MAX_PATH_BYTES:
        raise InvalidArgument(f"model_path is longer than {MAX_PATH_BYTES} bytes")
    if any(len(part) > MAX_COMPONENT_BYTES for part in encoded.split(b"/")):
        raise InvalidArgument(f"model_path has a component longer than {MAX_COMPONENT_BYTES} bytes")


def resolve_model_path(path: str, roots: Sequence[Path]) -> Path:
    """Return the resolved path of ``path`` (absolute, or relative to a root) inside a root.

    Raises PermissionDenied for anything outside every root (also when it does not exist, so
    the answer leaks nothing about the filesystem) and NotFound for a missing path inside one.
    """
    _check_shape(path)
    resolved_roots = [root.resolve() for root in roots]
    candidates = [Path(path)] if Path(path).is_absolute() else [r / path for r in resolved_roots]
    inside_a_root = False
    for candidate in candidates:
        resolved = _resolved(candidate)
        if resolved is None:
            raise InvalidArgument(f"model path {path!r} cannot be resolved (a symlink loop?)")
        if any(resolved.is_relative_to(r) for r in resolved_roots):
            inside_a_root = True
            if resolved.exists():
                return resolved
    if inside_a_root:
        raise NotFound(f"model not found: {path}")
    shown = ", ".join(str(r) for r in resolved_roots)
    raise PermissionDenied(f"model path {path!r} is outside the model roots ({shown})")


def model_size(path: Path) -> int:
    """Bytes of a file, or of the files directly in a model folder (0 for what cannot be read)."""
    try:
        return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    except OSError:
        return 0


def model_name(path: Path) -> str:
    """The name a model is served and listed under by default: the name it was pulled under
    (``ORG/REPO[:QUANT]``), else its file's stem or its folder's name."""
    record = read_marker(path)
    if record is not None:
        return str(record["name"])
    return path.stem if path.is_file() else path.name


def list_model_entries(
    roots: Sequence[Path], engine: common_pb2.Engine.ValueType, is_model: Callable[[Path], bool]
) -> list[control_pb2.ModelEntry]:
    """The loadable models under the roots, sorted by path; symlinks out of a root are skipped,
    as a load of them would be refused."""
    entries = []
    for root in roots:
        resolved = root.resolve()
        if not resolved.is_dir():
            continue
        for path in resolved.rglob("*"):
            if any(part.startswith(".") for part in path.relative_to(resolved).parts):
                continue  # hidden: a pull's staging area, or anything not meant to be served
            target = _resolved(path)
            if target is not None and target.is_relative_to(resolved) and is_model(path):
                entries.append(
                    control_pb2.ModelEntry(
                        path=str(path), name=model_name(path), engine=engine, size_bytes=model_size(path)
                    )
                )
    return sorted(entries, key=lambda entry: entry.path)
