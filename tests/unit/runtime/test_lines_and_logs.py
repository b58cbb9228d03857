"""Output of a child and our own log records stay bounded, whatever a client sends."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest

from switchyard import request_id
from switchyard.runtime.lines import bounded_lines
from switchyard.runtime.logs import MAX_MESSAGE_CHARS, TEXT_FORMAT, BoundedRecords, RequestIds, TextFormatter
from switchyard.supervisor import Part, Supervisor


async def lines_of(data: bytes, limit: int) -> list[str]:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return [line async for line in bounded_lines(reader, limit)]


async def test_long_lines_are_cut_and_reading_goes_on() -> None:
    data = b"first\n" + b"x" * 300_000 + b"\nafter\r\nno newline at the end"
    lines = await lines_of(data, limit=100)
    assert lines[0] == "first"
    assert lines[1] == "x" * 100 + "... [299900 more bytes cut]"
    assert lines[2:] == ["after", "no newline at the end"]


async def test_a_cut_inside_a_multibyte_character_does_not_fail() -> None:
    lines = await lines_of("日本語".encode() * 10 + b"\n", limit=4)
    assert lines[0].startswith("日") and "cut" in lines[0]


async def test_supervisor_relays_a_megabyte_line_and_the_part_is_not_blocked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A part that writes one huge log line then exits is seen exiting: the relay kept reading."""
    script = "import sys; sys.stdout.write('y' * 1_000_000 + '\\nstill talking\\n'); sys.stdout.flush()"
    ready_calls = 0

    async def ready() -> bool:
        nonlocal ready_calls
        ready_calls += 1
        return True

    supervisor = Supervisor([Part("chatty", [sys.executable, "-c", script], ready)], restart_backoff_s=())
    try:
        await supervisor.start_all()
        async with asyncio.timeout(60):
            await supervisor.stopping.wait()  # set when the part exits
    finally:
        await supervisor.stop_all()
    assert supervisor.failure == "chatty exited with code 0"
    err = capsys.readouterr().err
    assert "[chatty] still talking" in err
    assert "more bytes cut]" in err
    assert max(len(line) for line in err.splitlines()) < 20_000


def test_log_records_are_cut_before_formatting() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "generate %s start", ("r" * 100_000,), None)
    assert BoundedRecords().filter(record)
    message = record.getMessage()
    assert len(message) < MAX_MESSAGE_CHARS + 100 and message.endswith("more characters cut]")
    assert message.startswith("generate rrr")


def test_a_log_line_carries_the_request_id_and_never_a_raw_one() -> None:
    formatter = TextFormatter(TEXT_FORMAT)

    def line(rid: str) -> str:
        record = logging.LogRecord("t", logging.INFO, __file__, 1, "generate start", None, None)
        request_id.bind(rid)
        try:
            RequestIds().filter(record)
        finally:
            request_id.bind("")
        return formatter.format(record)

    assert line("abc-1").endswith(" INFO t [abc-1]: generate start")
    assert line("").endswith(" INFO t: generate start")
    sneaky = line("a\nFAKE LINE " + "z" * 100_000)  # from a gRPC client, unchecked
    assert "\n" not in sneaky and len(sneaky) < 400 and "\\nFAKE LINE" in sneaky
