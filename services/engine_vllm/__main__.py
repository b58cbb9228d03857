"""``python -m services.engine_vllm``: the vLLM engine service.

The ``__main__`` guard matters: vLLM starts its engine core in a spawned process. A reaper
process watches this service, so a SIGKILL of it leaves no engine core holding the model's
memory (the workers follow their engine core by themselves).
"""

from __future__ import annotations

import asyncio
import os

from services.engine_vllm.settings import VllmSettings
from switchyard.engine.pulls import USER_HUB_OFFLINE
from switchyard.engine.serve import run_engine_service
from switchyard.runtime.logs import configure_logging
from switchyard.runtime.reaper import Reaper
from switchyard.runtime.settings import parse_settings
from switchyard.v1 import common_pb2, control_pb2


def main() -> None:
    # vLLM itself loads only from the model roots, never a hub; pulls follow the user's choice.
    os.environ[USER_HUB_OFFLINE] = os.environ.get("HF_HUB_OFFLINE", "")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    settings = parse_settings(VllmSettings)
    reaper = Reaper.start()
    configure_logging(settings.log_level, settings.log_format, "engine_vllm")
    from services.engine_vllm.engine import VllmAdapter  # imports torch: after settings parse

    load = None
    if settings.load_model:
        load = control_pb2.LoadModelRequest(engine=common_pb2.ENGINE_VLLM, model_path=settings.load_model)
    asyncio.run(run_engine_service(VllmAdapter(settings, reaper), settings, "engine_vllm", load))  # not uvloop


if __name__ == "__main__":
    main()
