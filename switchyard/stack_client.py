"""The verbs a person runs against a running stack, through the gateway's HTTP API (the same one
a script uses, with the same keys): ``ps`` (what is loaded, where, memory, expiry), ``ls`` (what
can be loaded), ``load`` and ``unload``, and ``run`` (a streamed chat in the terminal). Each
prints a table for people, or with ``--json`` what the API answered, for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from switchyard.hub_names import HF_PREFIX, default_engine

URL_ENV = "SWITCHYARD_URL"
KEY_ENV = "SWITCHYARD_API_KEY"
DEFAULT_URL = "http://127.0.0.1:8080"
MAX_HISTORY_CHARS = 200_000  # what `run` keeps of a conversation: the oldest turns go first
EXIT_WORDS = ("/bye", "/exit")


class StackError(Exception):
    """An answer of the API that is an error: its status and its message, for the user."""


def add_arguments(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument("--url", default=os.environ.get(URL_ENV, DEFAULT_URL), help=f"the gateway (${URL_ENV})")
        parser.add_argument(
            "--api-key", default=os.environ.get(KEY_ENV), help=f"a key, where keys are set (${KEY_ENV})"
        )
        parser.add_argument("--json", action="store_true", help="print what the API answered, as JSON")
        parser.add_argument("--log-level", default="WARNING")
        return parser

    verb("ps", "what the running stack has loaded: where, memory, requests, expiry")
    verb("ls", "what the running stack can serve: loaded models and those under the model roots")
    load = verb("load", "load a model the stack lists (or hf:ORG/REPO[:QUANT], or a path with --engine)")
    load.add_argument("model")
    load.add_argument("--engine", choices=("llamacpp", "vllm"), help="default: the first by the engine order")
    load.add_argument("--keep-alive", type=float, metavar="SECONDS", help="unload after this long idle (0: never)")
    load.add_argument("--alias", action="append", default=[], help="another name it answers to (repeatable)")
    unload = verb("unload", "unload a model (on every engine that has it, or the one named)")
    unload.add_argument("model")
    unload.add_argument("--engine", choices=("llamacpp", "vllm"))
    run = verb("run", "chat with a model: one answer for PROMPT, else a conversation read from the terminal")
    run.add_argument("model")
    run.add_argument("prompt", nargs="?", help="one message; without it, read messages until EOF or /bye")
    run.add_argument("--engine", choices=("llamacpp", "vllm"))
    run.add_argument("--max-tokens", type=int, default=512)
    run.add_argument("--system", help="a system message first")


def main(args: argparse.Namespace) -> int:
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    console = Console(highlight=False)
    errors = Console(stderr=True, highlight=False)
    try:
        with httpx.Client(base_url=args.url, headers=headers, timeout=httpx.Timeout(30, read=3600)) as client:
            return VERBS[args.command](client, args, console)
    except StackError as exc:
        errors.print(f"[red]{exc}[/red]")
        return 1
    except httpx.TransportError as exc:
        errors.print(f"[red]cannot reach the stack at {args.url}: {exc}[/red] (is `switchyard up` running?)")
        return 1
    except KeyboardInterrupt:
        return 130


def _answer(response: httpx.Response) -> Any:
    if response.is_success:
        return response.json()
    try:
        error = response.json()["error"]
        message = error["message"] if isinstance(error, dict) else str(error)
    except (ValueError, KeyError, TypeError):
        message = response.text[:300]
    raise StackError(f"{response.status_code}: {message}")


def _print_json(console: Console, value: Any) -> None:
    console.print_json(json.dumps(value))


def _mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB" if size else "-"


def _expiry(expires_at: str | None) -> str:
    if not expires_at:
        return "never"
    left = datetime.fromisoformat(expires_at.replace("Z", "+00:00")) - datetime.now(UTC)
    seconds = max(0, int(left.total_seconds()))
    return f"in {seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"in {seconds}s"


def ps_rows(status: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model per engine, from /v1/status."""
    rows = []
    for engine, state in sorted(status.items()):
        for model in state.get("models") or []:
            rows.append(
                {
                    "model": model["model"],
                    "engine": engine,
                    "state": model["status"],
                    "backend": model.get("backend"),
                    "aliases": model.get("aliases") or [],
                    "memory_bytes": model.get("memory_bytes") or 0,
                    "in_flight": model.get("in_flight") or 0,
                    "expires_at": model.get("expires_at"),
                    "error": model.get("error"),
                }
            )
    return rows


def ps(client: httpx.Client, args: argparse.Namespace, console: Console) -> int:
    rows = ps_rows(_answer(client.get("/v1/status")))
    if args.json:
        _print_json(console, rows)
        return 0
    table = Table("MODEL", "ENGINE", "STATE", "MEMORY", "REQUESTS", "EXPIRES", "WHERE", box=None)
    for row in rows:
        name = row["model"] + (f" ({', '.join(row['aliases'])})" if row["aliases"] else "")
        state = row["state"] + (f": {row['error'][:80]}" if row["error"] else "")
        table.add_row(
            name,
            row["engine"],
            state,
            _mib(row["memory_bytes"]),
            str(row["in_flight"]),
            _expiry(row["expires_at"]),
            row["backend"] or "",
        )
    console.print(table if rows else "no model is loaded")
    return 0


def ls(client: httpx.Client, args: argparse.Namespace, console: Console) -> int:
    models = _answer(client.get("/v1/models"))["data"]
    if args.json:
        _print_json(console, models)
        return 0
    table = Table("MODEL", "ENGINES", box=None)
    for model in models:
        engines = ", ".join(f"{e['engine']} ({e['state']})" for e in model.get("engines") or [])
        name = model["id"] + (f" -> {model['alias_of']}" if model.get("alias_of") else "")
        table.add_row(name, engines)
    console.print(table if models else "nothing to serve: the model roots are empty")
    return 0


def load(client: httpx.Client, args: argparse.Namespace, console: Console) -> int:
    """By the name the stack lists; else ``hf:ORG/REPO[:QUANT]`` (pulled first) or a path under
    the model roots, on the engine named or the one the name suggests (as the gateway infers)."""
    body: dict[str, Any] = {"aliases": args.alias}
    listed = {m["id"] for m in _answer(client.get("/v1/models"))["data"]}
    if args.model in listed and not args.model.startswith(HF_PREFIX):
        body["model"] = args.model
        if args.engine:
            body["engine"] = args.engine
    else:
        body["model_path"] = args.model
        body["engine"] = args.engine or ("llamacpp" if args.model.endswith(".gguf") else default_engine(args.model))
    if args.keep_alive is not None:
        body["keep_alive_s"] = args.keep_alive
    if not args.json:
        console.print(f"loading {args.model}...")
    answer = _answer(client.post("/v1/models/load", json=body))
    if args.json:
        _print_json(console, answer)
    else:
        console.print(f"{answer['model']} is loaded on {answer['engine']}")
    return 0


def unload(client: httpx.Client, args: argparse.Namespace, console: Console) -> int:
    body = {"model": args.model, **({"engine": args.engine} if args.engine else {})}
    answer = _answer(client.post("/v1/models/unload", json=body))
    if args.json:
        _print_json(console, answer)
    else:
        console.print(f"{args.model} is unloaded")
    return 0


def _events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The JSON events of a server-sent event stream, up to ``[DONE]``."""
    for line in response.iter_lines():
        if not line.startswith("data: "):
            continue
        data = line.removeprefix("data: ")
        if data == "[DONE]":
            return
        event = json.loads(data)
        if "error" in event:
            raise StackError(f"the answer failed: {event['error'].get('message', event['error'])}")
        yield event


def chat_once(
    client: httpx.Client, args: argparse.Namespace, messages: list[dict[str, str]], console: Console
) -> tuple[str, dict[str, Any]]:
    """Stream one answer to the terminal (reasoning dimmed, apart); return its text and what
    ``--json`` prints for it: model, engine, tokens, seconds to the first token, tokens/s."""
    body: dict[str, Any] = {
        "model": args.model,
        "messages": messages,
        "max_tokens": args.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if args.engine:
        body["engine"] = args.engine
    text: list[str] = []
    facts: dict[str, Any] = {"model": args.model, "engine": None, "completion_tokens": 0}
    started = time.monotonic()
    first: float | None = None
    reasoning = False
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if not response.is_success:
            response.read()
            _answer(response)
        for event in _events(response):
            facts["engine"] = event.get("engine") or facts["engine"]
            facts["model"] = event.get("model") or facts["model"]
            if event.get("usage"):
                facts["completion_tokens"] = event["usage"]["completion_tokens"]
            for choice in event.get("choices") or []:
                delta = choice.get("delta") or {}
                thought, said = delta.get("reasoning_content"), delta.get("content")
                if (thought or said) and first is None:
                    first = time.monotonic()
                if thought and not args.json:
                    console.print(thought, style="dim italic", end="", soft_wrap=True)
                    reasoning = True
                if said:
                    if reasoning and not args.json:
                        console.print()
                        reasoning = False
                    text.append(said)
                    if not args.json:
                        console.print(said, end="", soft_wrap=True, markup=False)
    elapsed = time.monotonic() - started
    facts["time_to_first_token_s"] = round(first - started, 3) if first is not None else None
    decoding = elapsed - (first - started) if first is not None else 0.0
    tokens = facts["completion_tokens"]
    facts["tokens_per_s"] = round((tokens - 1) / decoding, 1) if decoding > 0 and tokens > 1 else None
    return "".join(text), facts


def run(client: httpx.Client, args: argparse.Namespace, console: Console) -> int:
    """One answer for a prompt; without one, a conversation: each line a message, until EOF or
    /bye, the history kept (bounded) so the model sees the turns before."""
    errors = Console(stderr=True, highlight=False)
    system = [{"role": "system", "content": args.system}] if args.system else []
    history: list[dict[str, str]] = []
    interactive = args.prompt is None
    while True:
        if interactive:
            try:
                line = console.input("[bold]>>> [/bold]") if sys.stdin.isatty() else input()
            except EOFError:
                return 0
            if line.strip() in EXIT_WORDS:
                return 0
            if not line.strip():
                continue
        else:
            line = args.prompt
        history.append({"role": "user", "content": line})
        text, facts = chat_once(client, args, [*system, *history], console)
        history.append({"role": "assistant", "content": text})
        while sum(len(m["content"]) for m in history) > MAX_HISTORY_CHARS and len(history) > 2:
            del history[:2]
        if args.json:
            _print_json(console, {**facts, "content": text})
        else:
            console.print()
            rate = f" · {facts['tokens_per_s']} tokens/s" if facts["tokens_per_s"] else ""
            first = facts["time_to_first_token_s"]
            errors.print(
                f"[dim]{facts['model']} on {facts['engine'] or '?'} · {facts['completion_tokens']} tokens{rate}"
                + (f" · first token after {first} s" if first is not None else "")
                + "[/dim]"
            )
        if not interactive:
            return 0


VERBS = {"ps": ps, "ls": ls, "load": load, "unload": unload, "run": run}
