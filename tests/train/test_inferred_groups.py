"""Runs on inferred groups: the reference stage is cached by config hash, partitions reach the
loss, the sampler and the selection rule, and the report compares them with the true groups."""

import json

import pytest

from support import compose_train, start_child, wait_child
from robustml.pipeline.run import run

FAST = ["trainer.max_steps=6", "trainer.eval_every=3", "trainer.progress=false"]


def _cfg(tmp_path, *overrides):
    return compose_train([*FAST, f"paths.output_root={tmp_path / 'runs'}", *overrides])


@pytest.mark.parametrize("overrides", [
    ["groups=error_split", "loss=group_dro", "loss.partition=inferred", "trainer.select=worst_inferred_group"],
    ["groups=eiil", "groups.num_steps=200", "loss=irm", "loss.partition=inferred", "sampler=group_balanced",
     "sampler.partition=inferred"],
    ["groups=clustering", "groups.num_clusters=2", "loss=group_dro", "loss.partition=inferred",
     "trainer.select=worst_class"],
])
def test_inferred_partition_feeds_loss_sampler_and_selection(overrides, tmp_path):
    final = run(_cfg(tmp_path, "groups.reference.max_steps=4", *overrides), run_dir=tmp_path / "run",
                summary="none")
    method = overrides[0].split("=")[1]
    assert final["inferred/method"] == method
    assert 0 <= final["train/inferred_purity_group_0"] <= 1 and "val/inferred_adjusted_rand" in final
    report = (tmp_path / "run" / "report.md").read_text()
    assert f"## Inferred groups ({method}, no group labels)" in report
    assert "groups inferred from a reference model without group labels" in report
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert "val/acc_worst_class" in record and "val/acc_worst_inferred_group" in record
    assert len(list((tmp_path / "runs" / "reference_cache").glob("*/stage.json"))) == 1


def test_reference_stage_is_trained_once_and_reused_by_a_sweep_over_the_second_stage(tmp_path):
    base = ["groups=error_split", "loss=group_dro", "loss.partition=inferred", "groups.reference.max_steps=4"]
    first = run(_cfg(tmp_path, *base, "loss.criterion.step_size=0.01"), run_dir=tmp_path / "a", summary="none")
    second = run(_cfg(tmp_path, *base, "loss.criterion.step_size=0.1"), run_dir=tmp_path / "b", summary="none")
    assert len(list((tmp_path / "runs" / "reference_cache").iterdir())) == 1
    assert "ERM stage, trained" in (tmp_path / "a" / "report.md").read_text()
    assert "ERM stage, reused" in (tmp_path / "b" / "report.md").read_text()
    # The same inferred partition both times (the reference stage's weights are reused).
    assert first["train/inferred_adjusted_rand"] == second["train/inferred_adjusted_rand"]
    # A different reference budget is another cache entry.
    run(_cfg(tmp_path, *base[:-1], "groups.reference.max_steps=5"), run_dir=tmp_path / "c", summary="none")
    assert len(list((tmp_path / "runs" / "reference_cache").iterdir())) == 2


def test_a_trained_run_can_be_the_reference(tmp_path):
    run(_cfg(tmp_path), run_dir=tmp_path / "erm", summary="none")
    final = run(_cfg(tmp_path, "groups=error_split", f"groups.reference.checkpoint={tmp_path / 'erm'}",
                     "loss=group_dro", "loss.partition=inferred"), run_dir=tmp_path / "run", summary="none")
    assert final["inferred/num_parts"] == 4
    assert not (tmp_path / "runs" / "reference_cache").exists()


@pytest.mark.parametrize("overrides, match", [
    (["loss=group_dro", "loss.partition=inferred"], "loss.partition=inferred needs inferred groups"),
    (["trainer.select=worst_inferred_group"], "trainer.select=worst_inferred_group needs inferred groups"),
    (["groups=error_split", "groups._target_=robustml.groups.magic"], "groups._target_ must be one of"),
])
def test_inferred_partition_misconfigurations_are_named(overrides, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        run(_cfg(tmp_path, *overrides), run_dir=tmp_path / "run", summary="none")


@pytest.mark.parametrize("method", ["error_split", "eiil", "clustering"])
def test_inference_reads_no_group_label(method, tmp_path):
    """Scrambling the spurious attribute (hence the groups) leaves every inferred partition unchanged."""
    import torch
    from robustml.data.contract import DataSplits
    from robustml.models import MLP
    from robustml.pipeline.inferred import infer_partitions
    from robustml.pipeline.instantiate import build_from
    cfg = _cfg(tmp_path, f"groups={method}", "groups.num_steps=100" if method == "eiil" else "seed=0")
    splits = build_from(cfg, "data")
    generator = torch.Generator().manual_seed(1)
    scrambled = DataSplits(*(split.replace(attr=torch.randint(0, split.num_attrs, (len(split),), generator=generator))
                             for _, split in splits.items()))
    assert not torch.equal(scrambled.train.group, splits.train.group)
    torch.manual_seed(0)
    model = MLP(splits.input_shape, 1, hidden_dims=(16,)).eval()
    first = infer_partitions(cfg, model, splits, {})
    second = infer_partitions(cfg, model, scrambled, {})
    for name in ("train", "val"):
        assert torch.equal(first[name].ids, second[name].ids)


def test_a_stopped_reference_stage_resumes_from_its_last_checkpoint(tmp_path):
    from robustml.pipeline.inferred import trained_reference
    cfg = _cfg(tmp_path, "groups=error_split", "groups.reference.max_steps=4")
    folder, status = trained_reference(cfg, num_train=1000)
    assert status == "trained"
    history = (folder / "metrics.jsonl").read_text()
    (folder / "stage.json").unlink()          # as if the process died before finishing
    again, status = trained_reference(cfg, num_train=1000)
    assert again == folder and status == "trained"
    assert "resume: true" in (folder / "config.yaml").read_text()
    assert (folder / "metrics.jsonl").read_text() == history   # continued at step 4: nothing retrained
    assert trained_reference(cfg, num_train=1000)[1] == "reused"
    # Another run with the same stage key (another name, other evaluation settings) resumes it too.
    (folder / "stage.json").unlink()
    other = _cfg(tmp_path, "groups=error_split", "groups.reference.max_steps=4", "name=other_run",
                 "trainer.eval_every=2", "trainer.eval_train=last")
    assert trained_reference(other, num_train=1000) == (folder, "trained")
    assert (folder / "metrics.jsonl").read_text() == history


def test_two_processes_asking_for_one_reference_stage_train_it_once(tmp_path):
    # A parallel sweep (joblib) starts its runs at once: the stage's lock file lets the first
    # train it and the others reuse it; without it both would train into the same folder.
    from robustml.pipeline.inferred import trained_reference
    cfg = _cfg(tmp_path, "groups=error_split", "groups.reference.max_steps=4")

    def ask(i):
        folder, status = trained_reference(cfg, num_train=1000)
        (tmp_path / f"status{i}").write_text(f"{status} {folder}")

    pids = [start_child(lambda i=i: ask(i)) for i in range(2)]  # two processes at once
    assert [wait_child(pid) for pid in pids] == [0, 0]
    results = sorted((tmp_path / f"status{i}").read_text().split() for i in range(2))
    assert [status for status, _ in results] == ["reused", "trained"]
    folder = results[0][1]
    assert results[1][1] == folder
    steps = [json.loads(line)["step"] for line in open(f"{folder}/metrics.jsonl")]
    assert steps == [3, 4]  # each evaluation once: one process trained
