"""``python -m services.engine_llamacpp``: the llama.cpp engine service."""

from __future__ import annotations

import asyncio

from services.engine_llamacpp.engine import LlamaCppAdapter
from services.engine_llamacpp.settings import LlamacppSettings
from switchyard.engine.serve import run_engine_service
from switchyard.llama_build import binary_version, ensure_llama_server
from switchyard.runtime.logs import configure_logging
from switchyard.runtime.settings import parse_settings
from switchyard.v1 import common_pb2, control_pb2


def main() -> None:
    settings = parse_settings(LlamacppSettings)
    configure_logging(settings.log_level, settings.log_format, "engine_llamacpp")
    binary = settings.llama_server or ensure_llama_server()
    adapter = LlamaCppAdapter(settings, binary, binary_version(binary))
    load = (
        control_pb2.LoadModelRequest(engine=common_pb2.ENGINE_LLAMACPP, model_path=settings.load_model)
        if settings.load_model
        else None
    )
    asyncio.run(run_engine_service(adapter, settings, "engine_llamacpp", load))  # not uvloop: see runtime/loop.py


if __name__ == "__main__":
    main()
