"""AMX asked for in each vLLM process, or hidden from vLLM where the kernel refuses it."""

from __future__ import annotations

import errno
import platform

import pytest
import torch

from services.engine_vllm import amx

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="AMX is x86-64's")


def test_a_refused_permission_hides_amx_from_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(amx, "advertised", lambda: True)
    monkeypatch.setattr(amx, "permitted", lambda: False)
    monkeypatch.setattr(amx, "_arch_prctl", lambda option, argument: errno.EPERM)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert "Operation not permitted" in amx.request()
    amx.in_vllm_process()
    assert torch.cpu._is_amx_tile_supported() is False


def test_a_granted_permission_leaves_vllm_its_amx_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(amx, "advertised", lambda: True)
    monkeypatch.setattr(amx, "permitted", lambda: False)
    monkeypatch.setattr(amx, "_arch_prctl", lambda option, argument: 0)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert amx.request() == ""
    amx.in_vllm_process()
    assert torch.cpu._is_amx_tile_supported() is True


def test_the_real_syscall_answers_on_this_machine() -> None:
    """Granted, or refused with the kernel's reason; never an exception (no AMX here is fine)."""
    answer = amx.request()
    assert answer == "" or "arch_prctl" in answer
    assert amx.permitted() == (answer == "")
