"""Tests of scripts/benchmark_heads.py: a tiny AFR run's features, both heads against the authors'
loops, the same test accuracies and every ratio in the JSON."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

from robustml.pipeline.run import run
from support import compose_train

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark_heads.py"


def test_tiny_benchmark_matches_the_authors_accuracies_and_writes_ratios(tmp_path):
    cfg = compose_train(["experiment=colored_digits_afr", "trainer.max_steps=100", "trainer.eval_every=50",
                         "trainer.progress=false", "method.gammas=[4.0]", "method.regs=[0.0]",
                         "method.num_epochs=30", f"method.cache_dir={tmp_path / 'features'}"])
    run(cfg, run_dir=tmp_path / "run", summary="none")
    out = tmp_path / "heads.json"
    result = runpy.run_path(str(SCRIPT))["main"](
        ["--set", f"colored_digits:{tmp_path / 'run'}:{tmp_path / 'run'}", "--json", str(out),
         "--repeats", "2", "--gammas", "0,6", "--regs", "0,0.1", "--members", "2", "--epochs", "2",
         "--batch-size", "32", "--cache-dir", str(tmp_path / "features")])
    assert json.loads(out.read_text()) == result
    numbers = result["sets"]["colored_digits"]
    assert numbers["afr"]["num_epochs"] == 30 and numbers["afr"]["gammas"] == [0.0, 6.0]
    for head, part in (("afr", "afr"), ("dpe_class", "dpe"), ("dpe_group", "dpe")):
        timing = numbers[part]
        assert timing[f"{head}_same_test_accuracy"] is True
        assert timing[f"{head}_ratio_authors_over_robustml"] > 0
        assert len(timing[f"{head}_robustml"]["seconds"]) == 2
        assert 0 <= timing[f"{head}_robustml"]["test_worst_group"] <= 100
