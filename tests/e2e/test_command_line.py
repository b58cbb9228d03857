"""The command line a person reaches for (switchyard/stack_client.py), against the real stack:
ps, ls, load by the name the stack lists, run (in a pseudo-terminal, as a person types), unload."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conformance.engines import LLAMACPP
from tests.e2e.conftest import SERVED, Stack, load_body

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def switchyard(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "switchyard", *args, "--url", stack.url]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)


def answer_of(stack: Stack, *args: str) -> Any:
    done = switchyard(stack, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def llamacpp_model_restored(stack: Stack) -> Iterator[None]:
    """The test loads another model on llama.cpp (one model at a time there): the stack's own
    model is back afterwards, for the tests that share the stack."""
    yield
    restored = httpx.post(f"{stack.url}/v1/models/load", json=load_body(LLAMACPP), timeout=600)
    assert restored.status_code == 200, restored.text


def test_ps_and_ls_show_what_the_stack_serves(stack: Stack) -> None:
    rows = answer_of(stack, "ps")
    mine = {(r["model"], r["engine"]): r for r in rows}
    for engine, name in SERVED.items():
        row = mine[(name, engine)]
        assert row["state"] == "loaded" and row["memory_bytes"] > 0 and row["backend"], row
    table = switchyard(stack, "ps")
    assert table.returncode == 0 and "MODEL" in table.stdout and SERVED["llamacpp"] in table.stdout
    listed = {m["id"]: m for m in answer_of(stack, "ls")}
    assert {e["state"] for e in listed["switchyard-demo"]["engines"]} == {"available"}
    assert listed[SERVED["vllm"]]["engines"][0]["state"] == "loaded"
    assert "switchyard-demo" in switchyard(stack, "ls").stdout


class Terminal:
    """The leader side of a pseudo-terminal: what the program showed, read as it comes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.unread = ""

    def expect(self, words: str, deadline_s: float) -> str:
        """What was shown up to and including ``words`` (ANSI codes removed); fails at the deadline."""
        deadline = time.monotonic() + deadline_s
        while words not in self.unread:
            left = deadline - time.monotonic()
            assert left > 0, f"no {words!r} on the terminal after {deadline_s} s: {self.unread!r}"
            ready, _, _ = select.select([self.fd], [], [], min(left, 1.0))
            if ready:
                try:
                    self.unread = ANSI.sub("", self.unread + os.read(self.fd, 65536).decode(errors="replace"))
                except OSError:  # the program closed the terminal
                    break
        shown, _, self.unread = self.unread.partition(words)
        return shown + words

    def type(self, line: str) -> None:
        os.write(self.fd, f"{line}\n".encode())


def test_load_by_name_then_chat_in_a_terminal_then_unload(stack: Stack, llamacpp_model_restored: None) -> None:
    loaded = answer_of(
        stack, "load", "switchyard-demo", "--engine", "llamacpp", "--keep-alive", "600", "--alias", "cli"
    )
    assert (loaded["model"], loaded["engine"]) == ("switchyard-demo", "llamacpp")
    row = next(r for r in answer_of(stack, "ps") if r["model"] == "switchyard-demo")
    assert row["aliases"] == ["cli"] and row["expires_at"] and row["engine"] == "llamacpp"

    once = answer_of(stack, "run", "cli", "Hello", "--max-tokens", "8")
    assert once["engine"] == "llamacpp" and once["completion_tokens"] == 8 and once["content"]

    # A conversation as a person has it: typed lines in a terminal, each answer streamed.
    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "switchyard", "run", "cli", "--max-tokens", "8", "--url", stack.url]
    chat = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    terminal = Terminal(leader)
    try:
        terminal.expect(">>> ", 120)
        for turn in ("Hello", "And again"):
            terminal.type(turn)
            assert "switchyard-demo on llamacpp · 8 tokens" in terminal.expect("8 tokens", 300)
            terminal.expect(">>> ", 60)
        terminal.type("/bye")
        assert chat.wait(60) == 0
    finally:
        chat.kill()
        chat.wait()
        os.close(leader)

    assert answer_of(stack, "unload", "switchyard-demo", "--engine", "llamacpp")["status"] == "success"
    assert all(r["model"] != "switchyard-demo" for r in answer_of(stack, "ps"))


def test_errors_are_the_apis_in_words(stack: Stack) -> None:
    missing = switchyard(stack, "load", "no-such-model")
    assert missing.returncode == 1 and "404" in missing.stderr and "no-such-model" in missing.stderr
    wrong = switchyard(stack, "run", "no-such-model", "hi")
    assert wrong.returncode == 1 and "no-such-model" in wrong.stderr
