"""Reading the service token: one line of printable ASCII, or a clear exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchyard.runtime.service_token import call_metadata, read_token


def test_a_token_file_is_read_and_sent_as_a_bearer(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("abc123\n")
    assert read_token(tmp_path / "t") == "abc123"
    assert call_metadata("abc123") == (("authorization", "Bearer abc123"),)
    assert read_token(None) is None and call_metadata(None) is None


@pytest.mark.parametrize("content", ["", "  \n", "two words\nand lines", "tök"])
def test_a_bad_token_file_stops_the_service_with_a_reason(tmp_path: Path, content: str) -> None:
    (tmp_path / "t").write_text(content)
    with pytest.raises(SystemExit, match="printable ASCII"):
        read_token(tmp_path / "t")


def test_a_missing_token_file_stops_the_service_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="cannot read the service token"):
        read_token(tmp_path / "missing")
