"""Sweeps through Hydra's launchers: submitit's local executor and joblib end to end, and the
SLURM config's sbatch file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import submitit
from hydra import compose, initialize_config_module
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import OmegaConf

from robustml.report.collect import collect

SCRIPT = Path(sys.executable).parent / "robustml-train"


@pytest.mark.parametrize("launcher", ["submitit_local", "joblib"])
def test_a_launcher_sweep_runs_every_job_and_collects(launcher, tmp_path):
    sweep_dir = tmp_path / "sweep"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ROBUSTML_OUTPUT": str(tmp_path / "runs")}
    parallel = ["hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    out = subprocess.run([str(SCRIPT), "-m", f"hydra/launcher={launcher}", *parallel,
                          f"hydra.sweep.dir={sweep_dir}", "seed=0,1", "trainer.max_steps=4",
                          "trainer.eval_every=2", "trainer.progress=false", "model.hidden_dims=[16]"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    # The jobs went through the launcher: submitit's executor folder, or joblib's log line.
    assert (sweep_dir / ".submitit").is_dir() if launcher == "submitit_local" else "Joblib" in out.stdout + out.stderr
    assert len(list(sweep_dir.glob("*/metrics.json"))) == 2
    assert "Sweep summary" in out.stdout
    result = collect(sweep_dir)
    (rows,) = result.tables.values()
    assert len(rows) == 1 and rows[0].seeds == [0, 1] and rows[0].chosen


def test_slurm_config_renders_an_sbatch_file_with_its_settings(tmp_path, monkeypatch):
    # submitit's SLURM executor looks for srun before it renders anything: a stand-in on PATH.
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with initialize_config_module(config_module="robustml.configs", version_base="1.3"):
        cfg = compose(config_name="train", return_hydra_config=True,
                      overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                                 f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra.job.name=train"])
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert params.pop("_target_").endswith("submitit_launcher.SlurmLauncher")
    # The translation hydra-submitit-launcher makes before update_parameters (which validates names).
    executor = submitit.AutoExecutor(cluster="slurm", folder=params.pop("submitit_folder"),
                                     slurm_max_num_timeout=params.pop("max_num_timeout"))
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    sbatch = executor._executor._make_submission_file_text("robustml-train", "job")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --cpus-per-task=4", "#SBATCH --time=240",
                 "#SBATCH --mem=16GB", "export OMP_NUM_THREADS=4"):
        assert line in sbatch, line
