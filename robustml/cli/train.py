"""``robustml-train``: the Hydra entry point around :func:`robustml.pipeline.run.run`.

A sweep (``-m``) prints one line per run and, at the end, one table over its runs
(:class:`robustml.pipeline.sweep.SweepSummary`). Errors, Ctrl-C and unknown keys are handled by
:mod:`robustml.cli.errors`.
"""

from __future__ import annotations

import sys
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from robustml.cli.errors import console, report_errors, reported
from robustml.pipeline.run import run
from robustml.pipeline.sweep import check_sweeper, sweep_objective
from robustml.train import distributed, keep_freed_memory


@hydra.main(version_base="1.3", config_path="pkg://robustml.configs", config_name="train")
@reported
def _train_task(cfg: DictConfig) -> float:
    sweeping = HydraConfig.get().mode == RunMode.MULTIRUN
    if sweeping:
        check_sweeper(HydraConfig.get().sweeper, cfg.trainer.select)
    final = run(cfg, summary="line" if sweeping else "full")
    return sweep_objective(cfg.trainer.select, final)


def main() -> Any:
    """Console entry point ``robustml-train``; returns the run's validation selection metric
    (``trainer.select``'s, val worst-group accuracy by default), which sweepers such as
    ``hydra/sweeper=optuna`` maximize.

    Under ``torchrun`` it first joins the process group (:mod:`robustml.train.distributed`).
    The process keeps freed memory (:func:`robustml.train.keep_freed_memory`): full-batch steps
    reuse their large buffers instead of faulting them in again.
    """
    keep_freed_memory()
    if not report_errors(distributed.init_from_env):
        return console(_train_task, "train")
    try:
        sys.argv = [sys.argv[0], *report_errors(lambda: distributed.launch_arguments(sys.argv[1:]))]
        return console(_train_task, "train")
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    main()
