"""Which secrets a process's environment may carry: each part gets only the ones it uses.

The API keys are the gateway's alone; the hub token belongs to the engine services (their
pulls); a llama-server child or the router needs neither. A secret a process does not hold
cannot leak from it (its /proc/PID/environ, a crash report, a child it starts).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping

API_KEY_VARS = ("SWITCHYARD_API_KEYS", "SWITCHYARD_ADMIN_KEYS")
HUB_TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
ALL_SECRETS = (*API_KEY_VARS, *HUB_TOKEN_VARS)


def environment_without(names: Collection[str], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (this process's environment by default) less the variables ``names``."""
    source = os.environ if env is None else env
    return {key: value for key, value in source.items() if key not in names}
