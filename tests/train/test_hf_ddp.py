"""model=hf under DDP: 2 processes on gloo train the tiny BERT as 1 process does (same global batch).

Marked slow: each started process imports transformers (about 15 s in all on a 2-core machine).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WORLD_SIZE = 2
# The BERT recipe with Group DRO (q synchronized over the processes), 96 texts in batches of 16
# (shares of 8), AdamW, the linear schedule and gradient clipping (on the all-reduced gradient);
# no dropout (each process draws its own masks).
OVERRIDES = ["loss=group_dro", "loss.criterion.step_size=0.5", "trainer.max_steps=8",
             "trainer.max_grad_norm=0.5", "trainer.eval_every=4"]


def _config():
    from hf_fixtures import text_config
    return text_config(OVERRIDES)


def _worker(rank: int, init_file: str, root: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        from robustml.pipeline.run import run
        run(_config(), Path(root) / "two", summary="none")
    finally:
        dist.destroy_process_group()


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_train_the_tiny_bert_as_one(tmp_path):
    if not dist.is_available():
        pytest.skip("torch.distributed is not available in this build")
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    from robustml.pipeline.run import run
    run(_config(), tmp_path / "one", summary="none")
    one, two = _records(tmp_path / "one"), _records(tmp_path / "two")
    assert [r["step"] for r in two] == [r["step"] for r in one] == [4, 8]
    for a, b in zip(two, one):
        for key, value in b.items():
            if key == "elapsed_s":
                continue
            assert a[key] == (pytest.approx(value, rel=1e-5, abs=1e-6) if isinstance(value, float)
                              else value), key
    assert max(abs(one[-1][f"train/q_{g}"] - 0.25) for g in range(4)) > 1e-4  # q moved, identically
