"""``robustml-train method=jtt|dfr`` end to end on the embedded colored digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robustml.data.datasets.colored_digits import colored_digits_splits
from robustml.features import cached_split_features
from robustml.heads import dfr_on_validation
from robustml.models import MLP
from robustml.pipeline.audit import audit_run
from robustml.pipeline.jtt import jtt_stage_one, stage_one_run_config
from robustml.pipeline.stages import stage_identity
from robustml.pipeline.labels import describe_group_label_use
from robustml.pipeline.run import run
from support import compose_train

FAST = ["trainer.max_steps=20", "trainer.eval_every=10", "trainer.progress=false"]


def _jtt(tmp_path, *overrides):
    return compose_train(["experiment=colored_digits_jtt", *FAST, "method.stage_one.max_steps=10",
                          f"method.cache_dir={tmp_path / 'cache'}", *overrides])


def test_a_lambda_up_sweep_trains_stage_one_once(tmp_path, caplog):
    caplog.set_level("INFO", logger="robustml.pipeline.jtt")
    results = [run(_jtt(tmp_path, f"method.lambda_up={lam}"), run_dir=tmp_path / f"run{i}", summary="none")
               for i, lam in enumerate((2, 5, 9, 2))]
    assert [r["jtt/stage_one_cache"] for r in results] == ["trained", "reused", "reused", "reused"]
    assert len({r["jtt/stage_one_dir"] for r in results}) == 1
    assert len(list((tmp_path / "cache").iterdir())) == 1
    assert sum("reusing the cached stage one" in m for m in caplog.messages) == 3
    assert results[0]["jtt/error_set_size"] > 0 and "test/acc_worst_group" in results[0]
    # Stage two is the same run whether its stage one was trained in this process or reused.
    untimed = [{k: v for k, v in r.items() if "seconds" not in k and k != "jtt/stage_one_cache"}
               for r in results]
    assert untimed[0] == untimed[3]
    assert results[3]["test/acc_worst_group"] != results[2]["test/acc_worst_group"]  # lambda_up counts
    identity = stage_identity(stage_one_run_config(_jtt(tmp_path)))
    assert "method" not in identity and identity["trainer"]["max_steps"] == 10  # T, not lambda_up
    report = (tmp_path / "run1" / "report.md").read_text()
    assert "## JTT" in report and "Training: none (JTT: the error set" in report


def test_the_error_set_is_stage_ones_mistakes_on_the_training_split(tmp_path):
    cfg = _jtt(tmp_path)
    stage = jtt_stage_one(cfg)
    entry = tmp_path / "cache" / next((tmp_path / "cache").iterdir()).name
    model_state = torch.load(entry / "checkpoints" / "last.pt", weights_only=False)["model"]
    splits = colored_digits_splits(seed=0)
    model = MLP(splits.input_shape, 1, hidden_dims=tuple(cfg.model.hidden_dims))
    model.load_state_dict(model_state)
    with torch.no_grad():
        preds = (model(splits.train.x) > 0).long().flatten()
    assert stage.errors.tolist() == torch.nonzero(preds != splits.train.y).flatten().tolist()
    assert stage.summary["jtt/stage_one_steps"] == 10


def test_stage_two_sampling_does_not_depend_on_group_labels(tmp_path):
    cfg = _jtt(tmp_path, "method.upweight=loss")
    stage = jtt_stage_one(cfg)
    train = colored_digits_splits(seed=0).train
    scrambled = train.replace(attr=torch.randint(0, 2, (len(train),), generator=torch.Generator().manual_seed(1)))
    assert not torch.equal(scrambled.group, train.group)
    _, weights, _ = stage.sampling(cfg, train)
    _, weights_scrambled, _ = stage.sampling(cfg, scrambled)
    torch.testing.assert_close(weights, weights_scrambled)
    assert describe_group_label_use(cfg)["training"].startswith("none (JTT")


def test_a_stage_one_cache_from_another_config_is_refused_naming_the_keys(tmp_path):
    jtt_stage_one(_jtt(tmp_path))
    entry = next((tmp_path / "cache").iterdir())
    with pytest.raises(ValueError, match=r"trainer.max_steps: this run has 12, the cache has 10"):
        jtt_stage_one(_jtt(tmp_path, "method.stage_one.max_steps=12", f"method.stage_one_dir={entry}"))
    with pytest.raises(ValueError, match=r"optimizer.lr"):
        jtt_stage_one(_jtt(tmp_path, "optimizer.lr=0.5", f"method.stage_one_dir={entry}"))
    with pytest.raises(FileNotFoundError, match="holds no stage_one.json"):
        jtt_stage_one(_jtt(tmp_path, f"method.stage_one_dir={tmp_path}"))


@pytest.mark.parametrize("override", ["method.stage_one.max_steps=2.5", "method.stage_one.max_steps=0"])
def test_a_fractional_or_zero_t_is_refused_by_name(tmp_path, override):
    with pytest.raises((TypeError, ValueError), match=r"method\.stage_one\.max_steps"):
        jtt_stage_one(_jtt(tmp_path, override))
    assert not (tmp_path / "cache").exists()


def test_sample_upweighting_with_the_full_batch_asks_for_loss_weights(tmp_path):
    with pytest.raises(ValueError, match="method.upweight=loss"):
        run(_jtt(tmp_path, "method.upweight=sample"), run_dir=tmp_path / "run", summary="none")
    assert not (tmp_path / "cache").exists()  # refused before stage one trained


def test_dfr_run_reports_dfr_metrics_equal_to_a_direct_fit_on_the_cached_features(tmp_path):
    cfg = compose_train(["experiment=colored_digits_dfr", *FAST, f"method.cache_dir={tmp_path / 'features'}"])
    final = run(cfg, run_dir=tmp_path / "run", summary="none")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"test/acc_worst_group", "test/acc_avg", "base/test/acc_worst_group", "dfr/C"} <= set(metrics)
    splits = colored_digits_splits(seed=0)
    model = MLP(splits.input_shape, 1, hidden_dims=tuple(cfg.model.hidden_dims))
    model.load_state_dict(torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=False)["model"])
    features = cached_split_features(model, splits, tmp_path / "features", progress=False)
    assert len(list((tmp_path / "features").glob("*.npy"))) == 3  # the run's entries, reused here
    direct = dfr_on_validation(features["train"], features["val"], splits.val.y.numpy(),
                               splits.val.group.numpy(), num_groups=splits.num_groups, seed=0)
    preds = direct.predict(features["test"])
    worst = min((preds == splits.test.y.numpy())[splits.test.group.numpy() == g].mean() for g in range(4))
    assert final["test/acc_worst_group"] == pytest.approx(worst) and final["dfr/C"] == direct.C
    assert [final[f"test/pred_share_{c}"] for c in (0, 1)] == pytest.approx([np.mean(preds == 0), np.mean(preds == 1)])
    assert [final[f"dfr/tuning_score_count_group_{g}"] for g in range(4)] == direct.tuning_counts["score"]
    small = any(n < 10 for counts in direct.tuning_counts.values() for n in counts)
    assert ("health/dfr_small_tuning_group" in final) == small  # the run's health step reads the counts
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## DFR" in report and "DFR's last layer: validation group labels" in report
    assert final["dfr/num_refits"] == 20  # num_refits: null is the authors' count on validation

    # robustml-audit of the run audits DFR's last layer (saved beside best.pt), not the base head.
    audit = json.loads((audit_run(tmp_path / "run", out_dir=tmp_path / "audit") / "audit.json").read_text())
    assert "DFR last layer" in audit["source"]
    for key in ("test/acc_worst_group", "test/acc_avg"):
        assert audit["per_group"][key] == pytest.approx(final[key], abs=1e-6)

    # The same base model from the finished run: no training, the same DFR result.
    again = run(compose_train(["experiment=colored_digits_dfr", *FAST, f"method.base_run={tmp_path / 'run'}",
                               f"method.cache_dir={tmp_path / 'features'}"]),
                run_dir=tmp_path / "again", summary="none")
    assert again["test/acc_worst_group"] == final["test/acc_worst_group"]
    assert not (tmp_path / "again" / "metrics.jsonl").exists()
    with pytest.raises(ValueError, match=r"model.hidden_dims: this run has \[32\], the base run has"):
        run(compose_train(["experiment=colored_digits_dfr", *FAST, "model.hidden_dims=[32]",
                           f"method.base_run={tmp_path / 'run'}"]), run_dir=tmp_path / "bad", summary="none")
