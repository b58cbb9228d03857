"""Confine model paths to the configured model roots.

The seed loaded any filesystem path; here a path must resolve (symlinks and ``..`` followed)
to a location inside one of the roots, or it is refused before anything touches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from switchyard.errors import InvalidArgument, NotFound, PermissionDenied


def resolve_model_path(path: str, roots: Sequence[Path]) -> Path:
    """Return the resolved path of ``path`` (absolute, or relative to a root) inside a root.

    Raises PermissionDenied for anything outside every root (also when it does not exist, so
    the answer leaks nothing about the filesystem) and NotFound for a missing path inside one.
    """
    if not path.strip():
        raise InvalidArgument("model_path is empty")
    if "\x00" in path:
        raise InvalidArgument("model_path contains a NUL byte")
    resolved_roots = [root.resolve() for root in roots]
    candidates = [Path(path)] if Path(path).is_absolute() else [r / path for r in resolved_roots]
    inside_a_root = False
    for candidate in candidates:
        resolved = candidate.resolve()
        if any(resolved.is_relative_to(r) for r in resolved_roots):
            inside_a_root = True
            if resolved.exists():
                return resolved
    if inside_a_root:
        raise NotFound(f"model not found: {path}")
    shown = ", ".join(str(r) for r in resolved_roots)
    raise PermissionDenied(f"model path {path!r} is outside the model roots ({shown})")


def iter_root_files(roots: Sequence[Path]) -> list[tuple[Path, Path]]:
    """Every (root, path) below the roots, roots that do not exist skipped, sorted by path."""
    found: list[tuple[Path, Path]] = []
    for root in roots:
        resolved = root.resolve()
        if resolved.is_dir():
            found.extend((resolved, p) for p in resolved.rglob("*"))
    return sorted(found, key=lambda pair: pair[1])
