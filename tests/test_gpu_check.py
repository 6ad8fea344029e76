"""scripts/gpu_check.py on the CPU (--device cpu): the table code the GPU machine runs, tested here."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


@pytest.fixture(scope="module")
def script() -> dict:
    return runpy.run_path(str(SCRIPT))


def test_dry_run_fills_the_table_and_every_cpu_path_matches_its_reference(script, tmp_path, capsys):
    out = tmp_path / "gpu_check.md"
    result = script["main"](["--device", "cpu", "--skip", "torchrun", "compile", "--out", str(out),
                             "--image-size", "32", "--batch-size", "4", "--steps", "2",
                             "--workers", "0"])
    rows = {row["row"]: row for row in result["rows"]}
    assert list(rows) == list(script["ROWS"])
    assert rows["torchrun"]["status"] == rows["compile"]["status"] == "skipped"
    for name in ("fp32", "accumulate=4, Group DRO", "pin_memory, 2 workers", "resume after a crash"):
        assert rows[name]["status"] == "PASS" and rows[name]["max_rel_diff"] <= 1e-5, name
    for name in ("bf16", "fp16 + GradScaler"):  # reduced precision: close, not equal
        assert 0 < rows[name]["max_rel_diff"] <= rows[name]["tolerance"], name
    speed = result["throughput"]
    assert speed["robustml"] > 0 and speed["plain"] > 0 and speed["ratio"] == pytest.approx(
        speed["robustml"] / speed["plain"])
    text = out.read_text()
    assert text in capsys.readouterr().out
    assert "| torchrun | | | skipped | | |" in text and "ResNet-50, 32 px, batch 4" in text


def test_a_row_outside_its_tolerance_fails(script, tmp_path, monkeypatch):
    monkeypatch.setitem(script["ROWS"], "fp32", (["optimizer.lr=0.01"], [], 1e-3))  # another run
    result = script["main"](["--device", "cpu", "--skip", *[r for r in script["ROWS"] if r != "fp32"],
                             "throughput"])
    (row,) = [r for r in result["rows"] if r["status"] != "skipped"]
    assert row["status"] == "FAIL" and row["max_rel_diff"] > 1e-3


def test_cuda_without_a_cuda_build_says_what_to_install(script, monkeypatch, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(SystemExit):
        script["main"](["--device", "cuda"])
    assert "install the CUDA build of torch" in capsys.readouterr().err


@pytest.mark.slow  # torchrun (2 gloo processes) and TorchInductor's compilation: minutes on 2 cores
def test_the_full_dry_run_passes_every_row(script):
    result = script["main"](["--device", "cpu", "--skip", "throughput"])
    assert [row["status"] for row in result["rows"]] == ["PASS"] * len(script["ROWS"])
