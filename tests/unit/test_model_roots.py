"""Model paths are confined to the model roots, symlinks and '..' included."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchyard.engine.model_roots import list_model_entries, resolve_model_path
from switchyard.errors import InvalidArgument, NotFound, PermissionDenied
from switchyard.v1 import common_pb2


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "models"
    root.mkdir()
    (root / "a.gguf").write_bytes(b"GGUF")
    outside = tmp_path / "secret.gguf"
    outside.write_bytes(b"GGUF")
    (root / "link-out.gguf").symlink_to(outside)
    return root, outside


def test_relative_and_absolute_paths_inside_resolve(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    assert resolve_model_path("a.gguf", [root]) == root / "a.gguf"
    assert resolve_model_path(str(root / "a.gguf"), [root]) == root / "a.gguf"


@pytest.mark.parametrize("path", ["../secret.gguf", "link-out.gguf", "/etc/passwd", "/nonexistent/x"])
def test_paths_leaving_the_roots_are_denied(layout: tuple[Path, Path], path: str) -> None:
    root, outside = layout
    with pytest.raises(PermissionDenied, match="outside the model roots"):
        resolve_model_path(path if path != "abs" else str(outside), [root])


def test_missing_model_inside_a_root_is_not_found(layout: tuple[Path, Path]) -> None:
    with pytest.raises(NotFound):
        resolve_model_path("missing.gguf", [layout[0]])


@pytest.mark.parametrize("path", ["", "  ", "a\x00b"])
def test_empty_or_nul_paths_are_invalid(layout: tuple[Path, Path], path: str) -> None:
    with pytest.raises(InvalidArgument):
        resolve_model_path(path, [layout[0]])


def test_second_root_is_searched(tmp_path: Path, layout: tuple[Path, Path]) -> None:
    other = tmp_path / "more"
    other.mkdir()
    (other / "b.gguf").write_bytes(b"GGUF")
    assert resolve_model_path("b.gguf", [layout[0], other]) == other / "b.gguf"


def test_listing_skips_what_leaves_the_root(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    entries = list_model_entries([root], common_pb2.ENGINE_LLAMACPP, lambda p: p.suffix == ".gguf")
    assert [(e.name, e.size_bytes) for e in entries] == [("a", 4)]  # not link-out.gguf


def test_a_symlink_loop_is_refused_and_does_not_break_the_listing(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    (root / "loop-a.gguf").symlink_to(root / "loop-b.gguf")
    (root / "loop-b.gguf").symlink_to(root / "loop-a.gguf")
    (root / "dir-loop").symlink_to(root / "dir-loop")
    with pytest.raises(InvalidArgument, match="cannot be resolved"):
        resolve_model_path("loop-a.gguf", [root])
    entries = list_model_entries([root], common_pb2.ENGINE_LLAMACPP, lambda p: p.suffix == ".gguf")
    assert [e.name for e in entries] == ["a"]


@pytest.mark.parametrize(
    ("path", "words"),
    [("x" * 256 + ".gguf", "component longer than 255"), ("a/" * 2100, "longer than 4096"), ("é" * 200, "255")],
    ids=["long-component", "long-path", "long-multibyte-component"],
)
def test_overlong_paths_are_invalid_not_an_os_error(layout: tuple[Path, Path], path: str, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        resolve_model_path(path, [layout[0]])
