"""Children that do not outlive their parent.

The kernel can signal a child when its parent dies, even by SIGKILL (Linux
``PR_SET_PDEATHSIG``). Setting it in a ``preexec_fn`` is unsafe in a process with threads
(gRPC's): the child can deadlock on a lock another thread held at fork. So a tiny Python
wrapper, a fresh single-threaded process, sets it and then execs the real program, which
keeps the pid and the setting.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence

PR_SET_PDEATHSIG = 1
_WRAPPER = (
    "import ctypes, os, sys\n"
    "parent, sig = int(sys.argv[1]), int(sys.argv[2])\n"
    f"ctypes.CDLL(None, use_errno=True).prctl({PR_SET_PDEATHSIG}, sig)\n"
    "if os.getppid() != parent:\n"  # the parent died before the setting took hold
    "    os._exit(1)\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


def tied_to_parent(argv: Sequence[str], sig: signal.Signals) -> list[str]:
    """``argv`` to spawn instead of ``argv``, so the program gets ``sig`` when we die."""
    if sys.platform != "linux":
        return list(argv)
    return [sys.executable, "-S", "-c", _WRAPPER, str(os.getpid()), str(int(sig)), *argv]
