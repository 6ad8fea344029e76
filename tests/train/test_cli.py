"""The console scripts as a user meets them: one-line errors, Ctrl-C, run names and sweep summaries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robustml.pipeline.naming import derive_run_name

SCRIPT = Path(sys.executable).parent / "robustml-train"


def _train(*args: str, tmp_path: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "ROBUSTML_OUTPUT": str(tmp_path / "runs")}
    env.pop("ROBUSTML_DEBUG", None)
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([str(SCRIPT), *args, "trainer.progress=false"], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_an_error_inside_a_run_is_printed_once_without_a_traceback(tmp_path):
    out = _train("seed=abc", tmp_path=tmp_path)
    assert out.returncode == 1
    assert out.stderr.count("seed must be an integer, got 'abc' (str)") == 1
    assert "Traceback" not in out.stderr and "ROBUSTML_DEBUG=1" in out.stderr
    assert "Error executing job" not in out.stderr  # Hydra adds no line of its own
    assert out.stderr.strip().splitlines()[0].startswith("Error: TypeError: seed must be")


def test_debug_variable_shows_the_full_traceback(tmp_path):
    env = {**os.environ, "ROBUSTML_DEBUG": "1", "ROBUSTML_OUTPUT": str(tmp_path)}
    out = subprocess.run([str(SCRIPT), "seed=abc"], capture_output=True, text=True, timeout=300,
                         env=env)
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_a_run_dir_that_cannot_be_created_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = _train(f"hydra.run.dir={blocker}/run", tmp_path=tmp_path)
    assert out.returncode == 1
    assert f"hydra.run.dir={blocker}/run cannot be created" in out.stderr
    assert "Traceback" not in out.stderr


def test_ctrl_c_prints_the_exact_resume_command_and_that_command_resumes(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "ROBUSTML_OUTPUT": str(tmp_path)}
    process = subprocess.Popen(
        [str(SCRIPT), "trainer.progress=false", "trainer.max_steps=100000", "trainer.eval_every=5",
         f"hydra.run.dir={run_dir}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while not (run_dir / "checkpoints" / "last.pt").is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    lines = [line for line in stderr.splitlines() if line.startswith("Interrupted")]
    assert len(lines) == 1, stderr
    command = lines[0].split(" with: ", 1)[1].split()
    assert command[0] == str(SCRIPT)  # as typed, so that it runs when copied
    assert f"hydra.run.dir={run_dir}" in command and command[-1] == "trainer.resume=true"
    # The printed command resumes the run (fewer steps so that it ends now: a changed config,
    # so the resume is forced).
    args = [a for a in command[1:] if not a.startswith("trainer.max_steps=")]
    resumed = _train(*args, "trainer.max_steps=10", "trainer.resume_force=true", tmp_path=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert (run_dir / "metrics.json").is_file()


def test_run_names_say_what_ran(tmp_path):
    out = _train("loss=group_dro", "model=cnn", "trainer.max_steps=2", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["colored_digits_group_dro_cnn"]
    (run_dir,) = (tmp_path / "runs" / "colored_digits_group_dro_cnn").iterdir()
    assert (run_dir / "report.md").read_text().startswith("# colored_digits_group_dro_cnn:")
    assert not (run_dir / "run.log").exists()  # robustml prints; no empty log file
    evaluations = [line for line in out.stdout.splitlines() if line.startswith("step ")]
    assert len(evaluations) == 1 and evaluations[0].startswith("step 2/2: train loss ")  # no bar
    assert out.stdout.split("\n", 1)[1].startswith("colored_digits_group_dro_cnn (seed 0)")


@pytest.mark.parametrize("choices,expected", [
    ({"data": "colored_digits", "loss": "erm", "model": "mlp", "augment": "none"}, "colored_digits_erm"),
    ({"data": "colored_digits", "loss": "group_dro", "model": "cnn"}, "colored_digits_group_dro_cnn"),
    ({"data": "colored_mnist", "loss": "erm", "sampler": "group_balanced", "cleaning": "confident_learning"},
     "colored_mnist_erm_group_balanced_confident_learning"),
    ({"data": "adult", "loss": "irm", "scheduler": "cosine", "optimizer": "sgd"}, "adult_irm_sgd_cosine"),
])
def test_derived_names_list_the_data_the_loss_and_every_non_default_choice(choices, expected):
    assert derive_run_name(choices) == expected


def test_two_different_runs_never_share_a_name():
    from omegaconf import OmegaConf
    base = {"data": "colored_digits", "loss": "erm"}
    names = {derive_run_name({**base, "augment": "counterfactual"},
                             OmegaConf.create({"augment": {"mode": mode}, "trainer": {"precision": p}}))
             for mode in ("paired", "replace") for p in ("fp32", "bf16")}
    assert len(names) == 4


def test_a_sweep_ends_with_one_table_over_its_runs(tmp_path):
    out = _train("-m", "seed=0,1", "trainer.max_steps=2", tmp_path=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "Accuracy by group" not in out.stdout  # no per-run full summaries in a sweep
    summary = out.stdout.split("Sweep summary", 1)[1]
    assert "| 0_colored_digits_erm | seed=0" in summary and "| 1_colored_digits_erm | seed=1" in summary
    assert "test worst-group (%)" in summary
    (sweep,) = (tmp_path / "runs" / "multirun").iterdir()
    assert "1_colored_digits_erm" in (sweep / "summary.md").read_text()


def test_the_sweep_table_orders_runs_by_job_number_and_lists_failed_runs(tmp_path):
    from robustml.pipeline.sweep import render_sweep_table
    for name in ("10_a", "2_a"):
        (tmp_path / name / ".hydra").mkdir(parents=True)
        (tmp_path / name / ".hydra" / "overrides.yaml").write_text(f"- seed={name[:-2]}\n")
    (tmp_path / "2_a" / "metrics.json").write_text('{"test/acc_worst_group": 0.5}')
    rows = [line for line in render_sweep_table(tmp_path).splitlines() if line.startswith("| ")][2:]
    assert rows[0].startswith("| 2_a ") and "50.0" in rows[0]
    assert rows[1].startswith("| 10_a ") and "no metrics.json (failed or interrupted)" in rows[1]


def test_the_console_script_imports_no_heavy_optional_library():
    """The demo's start-up: pandas, PIL, cleanlab, matplotlib, the trackers, Optuna and the text
    models' transformers (optional extras) load only where a run needs them."""
    heavy = ('pandas', 'PIL', 'cleanlab', 'matplotlib', 'tensorboard', 'mlflow', 'optuna',
             'transformers', 'sentence_transformers')
    code = ("import sys, robustml.cli.train, robustml.cli.clean; "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_an_experiment_name_gains_the_command_line_choices_that_change_it():
    from robustml.pipeline.naming import command_line_suffix
    assert command_line_suffix(["seed=1", "data.root=x", "trainer.max_steps=3"]) == []
    assert command_line_suffix(["loss=group_dro", "+model=cnn", "trainer.precision=bf16"]) == \
        ["group_dro", "cnn", "bf16"]
