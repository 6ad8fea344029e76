"""bf16 on a CPU without bf16 instructions warns once that it is far slower than fp32, and why."""

from __future__ import annotations

import warnings

import pytest
import torch

from robustml.models import forward
from robustml.models.forward import SlowPrecisionWarning, autocast, cpu_bf16_flags


@pytest.fixture
def fresh_warning():
    forward.warn_if_slow_bf16.cache_clear()
    yield
    forward.warn_if_slow_bf16.cache_clear()


def cpuinfo(tmp_path, flags: str):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: fpu sse2 avx2 {flags}\n\n"
                    f"processor\t: 1\nflags\t\t: fpu sse2 avx2 {flags}\n")
    return path


def test_flags_are_read_from_cpuinfo(tmp_path):
    assert cpu_bf16_flags(cpuinfo(tmp_path, "")) == {"avx512_bf16": False, "amx_bf16": False}
    assert cpu_bf16_flags(cpuinfo(tmp_path, "avx512_bf16")) == {"avx512_bf16": True,
                                                               "amx_bf16": False}
    assert cpu_bf16_flags(tmp_path / "missing") is None


@pytest.mark.parametrize(("flags", "warns"), [("", True), ("amx_bf16 amx_tile", False),
                                              ("avx512_bf16", False), (None, False)])
def test_bf16_on_cpu_warns_once_without_native_bf16(monkeypatch, tmp_path, fresh_warning, flags,
                                                    warns):
    path = tmp_path / "missing" if flags is None else cpuinfo(tmp_path, flags)
    monkeypatch.setattr(forward, "cpu_bf16_flags", lambda: cpu_bf16_flags(path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            with autocast(torch.device("cpu"), "bf16"):
                pass
            with autocast(torch.device("cpu"), "fp32"):
                pass
    slow = [w for w in caught if issubclass(w.category, SlowPrecisionWarning)]
    assert len(slow) == (1 if warns else 0)
    if warns:
        message = str(slow[0].message)
        assert "far slower than fp32" in message and "avx512_bf16" in message
        assert "use precision='fp32'" in message.lower()
