"""The ``switchyard`` command: ``switchyard up`` runs the whole stack on one machine; ``pull``
fetches a model into it; ``ps``, ``ls``, ``load``, ``unload`` and ``run`` talk to the running
stack through its HTTP API (switchyard/stack_client.py)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from tqdm import tqdm

from switchyard import stack_client
from switchyard.demo_model import make_demo_model
from switchyard.engine.presets import PresetError, PresetFile
from switchyard.engines import ENGINES_BY_NAME
from switchyard.hub_names import HF_PREFIX, default_engine
from switchyard.llama_build import ensure_llama_server
from switchyard.runtime import service_token
from switchyard.runtime.logs import configure_logging
from switchyard.runtime.secrets_env import ALL_SECRETS, API_KEY_VARS, HUB_TOKEN_VARS
from switchyard.runtime.service_token import read_token
from switchyard.supervisor import Part, PartFailed, Supervisor, grpc_ready, http_ready
from switchyard.v1 import control_pb2, control_pb2_grpc

logger = logging.getLogger("switchyard")
TOKEN_ENV = "SWITCHYARD_SERVICE_TOKEN_FILE"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="switchyard", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run engines, router and gateway; load the demo model")
    up.add_argument("--engines", default="llamacpp,vllm", help="comma-separated: llamacpp, vllm")
    up.add_argument("--host", default="127.0.0.1", help="gateway bind address (0.0.0.0 to expose it)")
    up.add_argument("--port", type=int, default=8080, help="gateway HTTP port")
    up.add_argument("--router-port", type=int, default=50051)
    up.add_argument("--vllm-port", type=int, default=50061)
    up.add_argument("--llamacpp-port", type=int, default=50062)
    up.add_argument("--models", type=Path, default=Path("models"), help="model root (the demo model is made here)")
    up.add_argument("--gguf", default="switchyard-demo.gguf", help="model for llama.cpp, in the model root")
    up.add_argument("--hf", default="switchyard-demo", help="model folder for vLLM, in the model root")
    up.add_argument(
        "--vllm-dtype",
        default=None,
        help="dtype for vLLM's model (default: float32 without a GPU, the seed's bfloat16 with one)",
    )
    up.add_argument("--max-models", type=int, default=1, help="models each engine holds at once (LRU eviction)")
    up.add_argument("--no-autoload", action="store_true", help="do not load a requested model on demand")
    up.add_argument(
        "--models-file",
        type=Path,
        default=os.environ.get("SWITCHYARD_MODELS_FILE") or None,
        help="YAML presets per model (engine, source, options, aliases, keep-alive, preload); re-read when edited",
    )
    up.add_argument(
        "--stream-interval",
        type=int,
        default=1,
        help="tokens per streamed message after the first (1: each at once; more: less CPU per token)",
    )
    up.add_argument("--no-load", action="store_true", help="start idle; load models through the API")
    up.add_argument("--log-level", default="INFO")
    up.add_argument(
        "--service-token-file",
        type=Path,
        default=os.environ.get(TOKEN_ENV) or None,
        help="token the parts present to each other (default: made for the run when API keys are set)",
    )
    pull = commands.add_parser("pull", help="pull a model from the Hugging Face hub into a running stack")
    pull.add_argument("model", help="ORG/REPO, or ORG/REPO:QUANT for one GGUF quantization (llama.cpp)")
    pull.add_argument("--engine", choices=sorted(ENGINES_BY_NAME), help="default: inferred as the gateway does")
    pull.add_argument("--revision", default="", help="branch, tag or commit (default main)")
    pull.add_argument("--include", action="append", default=[], help="file pattern to fetch (repeatable)")
    pull.add_argument("--exclude", action="append", default=[], help="file pattern not to fetch (repeatable)")
    pull.add_argument("--router", default="127.0.0.1:50051", help="the router's gRPC address")
    pull.add_argument("--log-level", default="WARNING")
    pull.add_argument("--service-token-file", type=Path, default=os.environ.get(TOKEN_ENV) or None)
    stack_client.add_arguments(commands)
    return parser.parse_args(argv)


def vllm_dtype(args: argparse.Namespace) -> str:
    """float32 without a GPU (vLLM's CPU build), the seed's bfloat16 with one."""
    return str(args.vllm_dtype or ("bfloat16" if shutil.which("nvidia-smi") else "float32"))


def build_parts(args: argparse.Namespace, engines: list[str]) -> list[Part]:
    python = sys.executable
    common = ["--log-level", args.log_level]
    parts: list[Part] = []
    backends: list[str] = []
    for engine in engines:
        port = args.llamacpp_port if engine == "llamacpp" else args.vllm_port
        address = f"127.0.0.1:{port}"
        argv = [python, "-m", f"services.engine_{engine}", "--port", str(port), "--model-roots", str(args.models)]
        argv += ["--max-models", str(args.max_models), "--stream-interval", str(args.stream_interval)]
        argv += ["--no-autoload"] if args.no_autoload else []
        argv += ["--models-file", str(args.models_file.resolve())] if args.models_file else []
        if engine == "vllm":
            argv += ["--default-dtype", vllm_dtype(args)]
        reload = None if args.no_load else functools.partial(load_models, address, args, [engine])
        parts.append(Part(f"engine_{engine}", argv + common, grpc_ready(address), API_KEY_VARS, after_restart=reload))
        backends.append(f"{engine}={address}")
    router = f"127.0.0.1:{args.router_port}"
    argv = [python, "-m", "services.router", "--port", str(args.router_port), "--backends", ",".join(backends)]
    parts.append(Part("router", argv + common, grpc_ready(router), ALL_SECRETS))
    argv = [python, "-m", "gateway", "--host", args.host, "--port", str(args.port), "--router", router]
    url_host = "localhost" if args.host in ("0.0.0.0", "127.0.0.1") else args.host
    parts.append(Part("gateway", argv + common, http_ready(f"http://{url_host}:{args.port}/health"), HUB_TOKEN_VARS))
    return parts


async def load_models(address: str, args: argparse.Namespace, engines: list[str]) -> None:
    """Load the demo model on each engine through the router at ``address`` (not the gateway,
    whose API keys are for clients), or on one engine service at its own address once the
    supervisor restarted it."""
    token = read_token(args.service_token_file)
    async with service_token.channel(address, token) as channel:
        control = control_pb2_grpc.ControlStub(channel)
        for engine in engines:
            request = control_pb2.LoadModelRequest(
                engine=ENGINES_BY_NAME[engine], model_path=args.gguf if engine == "llamacpp" else args.hf
            )
            if engine == "vllm":
                request.vllm.dtype = vllm_dtype(args)
            logger.info("loading %s on %s", request.model_path, engine)
            try:
                async for _ in control.LoadModel(request, timeout=1800, metadata=service_token.call_metadata(token)):
                    pass
            except grpc.aio.AioRpcError as exc:
                raise PartFailed(f"loading on {engine} failed: {exc.code().name}: {exc.details()}") from exc


async def up(args: argparse.Namespace) -> int:
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES_BY_NAME)
    if unknown or not engines:
        raise SystemExit(f"--engines takes llamacpp and/or vllm, not {args.engines!r}")
    if args.models_file is not None:
        try:  # before anything starts: the file's error, not a part that will not come up
            PresetFile.open(args.models_file, engines[0])
        except PresetError as exc:
            raise SystemExit(str(exc)) from None
    if "llamacpp" in engines:
        await asyncio.to_thread(ensure_llama_server)
    if not args.no_load:
        await asyncio.to_thread(make_demo_model, args.models)
    with contextlib.ExitStack() as cleanup:
        if args.service_token_file is None and (
            os.environ.get("SWITCHYARD_API_KEYS") or os.environ.get("SWITCHYARD_ADMIN_KEYS")
        ):
            # Keys on the gateway would mean little if the router and engines took any call.
            args.service_token_file = cleanup.enter_context(run_token())
        if args.service_token_file is not None:
            os.environ[TOKEN_ENV] = str(args.service_token_file)  # every part reads it from there
        return await run_stack(args, engines)


@contextlib.contextmanager
def run_token() -> Iterator[Path]:
    """A token for this run, in a file only this user can read, removed at the end."""
    with tempfile.TemporaryDirectory(prefix="switchyard-") as folder:  # created 0700
        path = Path(folder) / "service-token"
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
        yield path


async def run_stack(args: argparse.Namespace, engines: list[str]) -> int:
    supervisor = Supervisor(build_parts(args, engines))
    supervisor.install_signal_handlers()
    base_url = f"http://{'localhost' if args.host in ('0.0.0.0', '127.0.0.1') else args.host}:{args.port}"
    try:
        await supervisor.start_all()
        if not args.no_load:
            await load_models(f"127.0.0.1:{args.router_port}", args, engines)
        example = engines[0]
        print(
            f"\nswitchyard is up: {base_url}  (OpenAPI docs: {base_url}/docs)\n"
            f"  curl {base_url}/v1/status\n"
            f"  curl {base_url}/v1/completions -H 'Content-Type: application/json' \\\n"
            f'       -d \'{{"prompt": "こんにちは", "engine": "{example}", "max_tokens": 32}}\'\n'
            "Ctrl-C stops everything.\n",
            flush=True,
        )
        await supervisor.stopping.wait()
    except (PartFailed, TimeoutError) as exc:
        supervisor.failure = supervisor.failure or str(exc) or "a part did not become ready in time"
    finally:
        await supervisor.stop_all()
    if supervisor.failure:
        logger.error("switchyard stopped: %s", supervisor.failure)
        return 1
    logger.info("switchyard stopped")
    return 0


async def pull(args: argparse.Namespace) -> int:
    """Pull through the router, one progress bar per replica; 0 once every replica has it."""
    request = control_pb2.PullModelRequest(
        engine=ENGINES_BY_NAME[args.engine or default_engine(args.model)],
        model=args.model.removeprefix(HF_PREFIX),
        revision=args.revision,
        include=args.include,
        exclude=args.exclude,
    )
    bars: dict[str, tqdm[Any]] = {}
    done: dict[str, control_pb2.PullProgress] = {}
    token = read_token(args.service_token_file)
    async with service_token.channel(args.router, token) as channel:
        try:
            pulling = control_pb2_grpc.ControlStub(channel).PullModel(
                request, metadata=service_token.call_metadata(token)
            )
            async for event in pulling:
                progress = event.progress
                bar = bars.get(progress.backend)
                if bar is None:
                    bar = bars[progress.backend] = tqdm(unit="B", unit_scale=True, desc=progress.backend or args.model)
                bar.total = progress.bytes_total or None
                bar.n = progress.bytes_done
                state = control_pb2.PullState.Name(progress.state).removeprefix("PULL_STATE_").lower()
                bar.set_postfix_str(f"{state} {progress.current_file}".rstrip())
                if progress.state == control_pb2.PULL_STATE_DONE:
                    done[progress.backend] = progress
        except grpc.aio.AioRpcError as exc:
            print(f"pull failed: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
        finally:
            for bar in bars.values():
                bar.close()
    for backend, progress in sorted(done.items()):
        print(
            f"{progress.name} ({progress.revision[:12]}) is at {progress.model_path}"
            + (f" on {backend}" if backend else "")
        )
    return 0


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging(args.log_level, "text", "switchyard")
    if args.command in stack_client.VERBS:
        sys.exit(stack_client.main(args))
    sys.exit(asyncio.run(up(args) if args.command == "up" else pull(args)))


if __name__ == "__main__":
    main()
