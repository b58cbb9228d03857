"""AMX in vLLM's own processes: asked for before any kernel runs, or kept out of vLLM's sight.

On a CPU with AMX (Intel Sapphire Rapids and later), vLLM's CPU build runs bfloat16 attention
and small GEMMs on AMX tiles: it picks those kernels from CPUID alone
(``torch.cpu._is_amx_tile_supported()``). Linux (5.16+) hands out the 8 KiB tile state only to
a process that asked for it with ``arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)``; a
tile instruction without that permission is answered with SIGILL (``handle_xfd_event`` in
``arch/x86/kernel/traps.c``). vLLM never asks itself: the permission comes, as a side effect,
from oneDNN's first AMX probe (``dnnl::impl::cpu::x64::amx::is_available()``, the only
``arch_prctl`` in vLLM's ``_C.abi3.so``), and vLLM's own kernel tests call
``torch.cpu._init_amx()`` so as not to depend on that order. The permission is per process and
``execve`` resets it, so each spawned engine core and worker needs its own.

``in_vllm_process`` runs in every vLLM process, as a vLLM general plugin (the entry point
``vllm.general_plugins: switchyard-amx`` in pyproject.toml), before the model is built. It asks
for the permission; where the kernel refuses it (a too small signal stack in some thread, a
seccomp filter, a kernel without AMX support), it tells vLLM the CPU has no AMX tiles, so that
vLLM picks its AVX-512 kernels instead of dying on the first tile instruction.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

logger = logging.getLogger(__name__)

SYS_ARCH_PRCTL = 158  # x86-64
ARCH_GET_XCOMP_PERM = 0x1022
ARCH_REQ_XCOMP_PERM = 0x1023
XFEATURE_XTILEDATA = 18


def _arch_prctl(option: int, argument: int | ctypes.c_void_p) -> int:
    """The syscall's errno (0: success)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.syscall(ctypes.c_long(SYS_ARCH_PRCTL), ctypes.c_long(option), argument) == 0:
        return 0
    return ctypes.get_errno() or -1


def permitted() -> bool:
    """Whether this process may use the AMX tile state now."""
    if platform.machine() != "x86_64":
        return False
    mask = ctypes.c_uint64(0)
    if _arch_prctl(ARCH_GET_XCOMP_PERM, ctypes.cast(ctypes.pointer(mask), ctypes.c_void_p)) != 0:
        return False
    return bool(mask.value & (1 << XFEATURE_XTILEDATA))


def request() -> str:
    """Ask for the AMX tile state for this process: "" once granted, else why not."""
    if platform.machine() != "x86_64":
        return "not an x86-64 CPU"
    if permitted():
        return ""
    error = _arch_prctl(ARCH_REQ_XCOMP_PERM, ctypes.c_void_p(XFEATURE_XTILEDATA))
    if error == 0:
        return ""
    name = os.strerror(error) if error > 0 else "unknown error"
    return f"arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) failed: {name}"


def advertised() -> bool:
    """Whether vLLM will pick AMX kernels here (it asks torch, which reads CPUID)."""
    import torch

    return bool(torch.cpu._is_amx_tile_supported())


def hide_from_vllm() -> None:
    """Make vLLM (and torch's own AMX paths that ask the same question) see no AMX tiles."""
    import torch

    torch.cpu._is_amx_tile_supported = lambda: False


def in_vllm_process() -> None:
    """The vLLM general plugin: AMX granted before any kernel runs, or not used at all."""
    if platform.machine() != "x86_64" or not advertised():
        return
    refused = request()
    if refused:
        logger.warning("AMX is refused to this process (%s); vLLM will use its AVX-512 kernels", refused)
        hide_from_vllm()
    else:
        logger.debug("AMX tile state granted to process %d", os.getpid())
