"""Each health check fires on a small constructed case that shows its failure and stays quiet on a
healthy one; the framework ranks, caps and stores the findings."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf

from robustml.health import Finding, Thresholds, as_metrics, console_lines, from_metrics, report_section
from robustml.pipeline import dfr, jtt
from robustml.train import health

LIMITS = Thresholds()
NAMES = ["y=0,a=0", "y=0,a=1", "y=1,a=0", "y=1,a=1"]


def _history(losses, every=10):
    return [{"step": every * (i + 1), "train/loss": loss} for i, loss in enumerate(losses)]


def test_chance_loss_is_the_entropy_of_the_label_prior():
    assert health.chance_loss(torch.tensor([0, 1, 0, 1]), 2) == pytest.approx(math.log(2))
    assert health.chance_loss(torch.tensor([0, 0, 0, 1]), 2) == pytest.approx(
        -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))


def test_not_learning_fires_at_chance_and_names_the_l2_weight_and_the_learning_rate():
    found = health.not_learning(_history([0.70, 0.695, 0.694]), chance=math.log(2), max_steps=30,
                                l2_weight=0.0011, lr=1e-3, thresholds=LIMITS)
    assert [f.check for f in found] == ["not_learning"]
    assert "l2_weight=0 (now 0.0011)" in found[0].message and "lr=0.003" in found[0].message


def test_not_learning_without_an_l2_term_names_the_learning_rate_only():
    found = health.not_learning(_history([0.70, 0.695, 0.694]), chance=math.log(2), max_steps=30,
                                l2_weight=0.0, lr=1e-3, thresholds=LIMITS)  # the trainer's default L2
    assert "l2_weight" not in found[0].message
    assert found[0].message.endswith("try lr=0.003, or a longer run (max_steps=120) if the loss was still falling")


def test_not_learning_is_quiet_when_the_loss_falls_below_chance():
    assert health.not_learning(_history([0.69, 0.4, 0.2]), chance=math.log(2), max_steps=30,
                               l2_weight=0.0, lr=1e-3, thresholds=LIMITS) == []


def _final(worst, mix, counts=(50, 50, 50, 50)):
    final = {"val/acc_worst_group": worst, "val/acc_weighted_avg": mix, "val/worst_group": 2}
    for g, n in enumerate(counts):
        final[f"val/count_group_{g}"], final[f"val/acc_group_{g}"] = n, 0.5
    return final


def test_shortcut_learned_fires_on_a_wide_gap_and_not_on_a_narrow_one():
    found = health.shortcut_learned(_final(0.2, 0.9), NAMES, thresholds=LIMITS)
    assert [f.check for f in found] == ["shortcut_learned"] and "y=1,a=0" in found[0].message
    assert found[0].message.endswith("try a remedy: loss=group_dro, method=jtt or method=dfr")
    assert health.shortcut_learned(_final(0.8, 0.9), NAMES, thresholds=LIMITS) == []
    # A run that already uses a remedy is pointed at the others, not at itself.
    jtt = health.shortcut_learned(_final(0.2, 0.9), NAMES, thresholds=LIMITS, in_use=["method=jtt"])
    assert jtt[0].message.endswith("try another remedy: loss=group_dro or method=dfr")
    every = health.shortcut_learned(_final(0.2, 0.9), NAMES, thresholds=LIMITS,
                                    in_use=["loss=group_dro", "method=jtt", "method=dfr"])
    assert every[0].message.endswith("tune this run's remedy or combine it with another")


def test_selection_of_the_first_evaluation_and_small_groups_with_their_interval():
    history = _history([0.5, 0.4, 0.3])
    found = health.selection(history, 10, _final(0.5, 0.6, counts=(50, 5, 50, 50)), NAMES,
                             select="worst_group", thresholds=LIMITS)
    assert [f.check for f in found] == ["selected_first_evaluation", "small_val_group"]
    assert "group 1 (y=0,a=1): 5 examples, 50%" in found[1].message and "95% interval" in found[1].message
    quiet = health.selection(history, 20, _final(0.5, 0.6), NAMES, select="worst_group", thresholds=LIMITS)
    assert quiet == []
    assert health.selection(history, 10, _final(0.5, 0.6), NAMES, select="last", thresholds=LIMITS) == []


def _q_history(rows):
    return [{"step": i + 1, **{f"train/q_{g}": q for g, q in enumerate(row)}} for i, row in enumerate(rows)]


def test_group_dro_q_frozen_collapsed_and_moving():
    frozen = health.group_dro_weights(_q_history([[0.25, 0.25, 0.26, 0.24]] * 4), num_groups=4,
                                      step_size=0.01, thresholds=LIMITS)
    assert [f.check for f in frozen] == ["group_dro_q_frozen"] and "step_size=0.1" in frozen[0].message
    collapsed = health.group_dro_weights(
        _q_history([[0.25] * 4, [0.1, 0.1, 0.7, 0.1], [0.0, 0.0, 0.995, 0.005], [0.0, 0.0, 0.999, 0.001]]),
        num_groups=4, step_size=1.0, thresholds=LIMITS)
    assert [f.check for f in collapsed] == ["group_dro_q_collapsed"] and "group 2" in collapsed[0].message
    moving = _q_history([[0.25] * 4, [0.2, 0.2, 0.4, 0.2], [0.1, 0.3, 0.4, 0.2], [0.2, 0.3, 0.3, 0.2]])
    assert health.group_dro_weights(moving, num_groups=4, step_size=0.01, thresholds=LIMITS) == []


def _stage_one(errors, n=10):
    return jtt.StageOne(torch.tensor(errors, dtype=torch.int64), n, "", {}, "")


@pytest.mark.parametrize("errors,words", [([], "is empty"), (list(range(6)), "holds 6 of 10"),
                                          ([0, 1, 2, 3, 4], "100% of JTT's error set")])
def test_jtt_error_set_fires_on_empty_most_or_one_class(errors, words):
    target = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    found = jtt.health(_stage_one(errors), target, 2, batch_size=None, thresholds=LIMITS)
    assert found[0].check == "jtt_error_set" and words in found[0].message
    assert "method.stage_one.max_steps" in found[0].message


def test_jtt_error_set_is_quiet_on_a_mixed_minority():
    target = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    assert jtt.health(_stage_one([1, 6, 8]), target, 2, batch_size=None, thresholds=LIMITS) == []


def test_jtt_stage_one_no_better_than_the_majority_class_or_shorter_than_an_epoch():
    target = torch.tensor([0] * 7 + [1] * 3)
    found = jtt.health(_stage_one([7, 8, 9]), target, 2, batch_size=None, thresholds=LIMITS)
    assert [f.check for f in found] == ["jtt_error_set", "jtt_stage_one"]  # all of class 1, and 70%
    assert "no better than always predicting the majority class (70.0%)" in found[1].message
    short = jtt.StageOne(torch.tensor([1, 8]), 10, "", {"jtt/stage_one_steps": 2}, "")
    found = jtt.health(short, target, 2, batch_size=4, thresholds=LIMITS)
    assert [f.check for f in found] == ["jtt_stage_one"] and "less than one epoch of 10" in found[0].message
    assert jtt.health(short, target, 2, batch_size=5, thresholds=LIMITS) == []


def _inferred_splits(ids):
    from robustml.data.datasets.colored_digits import colored_digits_splits
    from robustml.groups import InferredGroups
    splits = colored_digits_splits(seed=0)
    part = InferredGroups(ids, 4, ["a", "b", "c", "d"], "error_split", {})
    return type(splits)(splits.train.with_partition("inferred", part), splits.val, splits.test)


def test_inferred_groups_fire_when_a_class_is_not_split_or_a_part_is_tiny():
    from robustml.pipeline import inferred
    from robustml.data.datasets.colored_digits import colored_digits_splits
    y = colored_digits_splits(seed=0).train.y
    split_well = 2 * y + (torch.arange(len(y)) % 3 == 0).long()  # a third of each class in part 2c+1
    assert inferred.health(_inferred_splits(split_well), thresholds=LIMITS) == []
    not_split = 2 * y  # every example in its class's first part
    found = inferred.health(_inferred_splits(not_split), thresholds=LIMITS)
    assert [f.check for f in found] == ["inferred_groups"] and "holds 100% of class" in found[0].message
    tiny = 2 * y + (torch.arange(len(y)) == 0).long()  # one example in part 1
    assert "holds 1 of" in inferred.health(_inferred_splits(tiny), thresholds=LIMITS)[0].message


def test_cleaning_fires_on_a_group_flagged_far_above_the_overall_rate():
    from robustml.pipeline import clean
    final = {"cleaning/examples": 100, "cleaning/flagged": 10,
             "cleaning/count_group_0": 90, "cleaning/flagged_group_0": 2,
             "cleaning/count_group_1": 10, "cleaning/flagged_group_1": 8}
    found = clean.health(final, ["major", "minor"], thresholds=LIMITS)
    assert [f.check for f in found] == ["cleaning_group"] and "group 1 (minor) 80%" in found[0].message
    final.update({"cleaning/flagged_group_0": 9, "cleaning/flagged_group_1": 1})
    assert clean.health(final, ["major", "minor"], thresholds=LIMITS) == []


def test_prediction_shares_count_each_class():
    from robustml.metrics import prediction_shares
    assert prediction_shares(torch.tensor([2, 2, 0, 2]), num_classes=3) == {
        "pred_share_0": 0.25, "pred_share_1": 0.0, "pred_share_2": 0.75}
    with pytest.raises(ValueError, match=r"preds must lie in \[0, 2\)"):
        prediction_shares(torch.tensor([0, 2]), num_classes=2)


def _shares(val, test=(0.5, 0.5)):
    return {**{f"val/pred_share_{c}": s for c, s in enumerate(val)},
            **{f"test/pred_share_{c}": s for c, s in enumerate(test)}}


HINT = "train longer"


def test_one_class_predictor_fires_when_one_class_is_predicted_far_beyond_its_share():
    counts = {"val": [60, 40], "test": [50, 50]}
    found = health.one_class_predictor(_shares((0.0, 1.0)), counts, ["no", "yes"], thresholds=LIMITS, hint=HINT)
    assert [f.check for f in found] == ["one_class_predictor"] and found[0].severity == 3
    assert "predicts class yes for 100.0% of val examples, while it is 40.0% of them" in found[0].message
    assert "test" not in found[0].message and found[0].message.endswith(": train longer")  # test is mixed
    both = health.one_class_predictor(_shares((0.995, 0.005), (1.0, 0.0)), counts, ["no", "yes"],
                                      thresholds=LIMITS, hint=HINT)
    assert "99.5% of val" in both[0].message and "100.0% of test" in both[0].message


def test_one_class_predictor_is_quiet_on_mixed_predictions_or_a_class_that_is_most_examples():
    counts = {"val": [60, 40], "test": [50, 50]}
    assert health.one_class_predictor(_shares((0.7, 0.3)), counts, ["no", "yes"], thresholds=LIMITS, hint=HINT) == []
    majority = {"val": [95, 5], "test": [95, 5]}  # predicting class 0 everywhere is 95% right
    assert health.one_class_predictor(_shares((1.0, 0.0), (1.0, 0.0)), majority, ["no", "yes"],
                                      thresholds=LIMITS, hint=HINT) == []


def _dfr_splits():
    from robustml.data.datasets.colored_digits import colored_digits_splits
    return colored_digits_splits(seed=0)


def _dfr_final(C=0.3, fit=(30, 30, 30, 30), score=(30, 30, 30, 30)):
    final = {"dfr/C": C, **_shares((0.5, 0.5))}
    for part, counts in (("fit", fit), ("score", score)):
        final.update({f"dfr/tuning_{part}_count_group_{g}": n for g, n in enumerate(counts)})
    return final


def test_dfr_c_at_the_edge_of_its_grid():
    cfg = OmegaConf.create({"method": {"C_grid": [1.0, 0.3, 0.1], "fit_on": "val"}})
    splits = _dfr_splits()
    found = dfr.health(cfg, _dfr_final(C=1.0), splits, thresholds=LIMITS)
    assert [f.check for f in found] == ["dfr_c_at_grid_edge"] and "largest" in found[0].message
    assert dfr.health(cfg, _dfr_final(), splits, thresholds=LIMITS) == []


def test_dfr_a_group_with_few_tuning_examples_is_named_with_its_count_and_the_remedy():
    splits = _dfr_splits()
    cfg = OmegaConf.create({"method": {"C_grid": [1.0, 0.3, 0.1], "fit_on": "val"}})
    names = splits.group_names
    found = dfr.health(cfg, _dfr_final(fit=(30, 30, 6, 30), score=(30, 4, 30, 9)), splits, thresholds=LIMITS)
    assert [f.check for f in found] == ["dfr_small_tuning_group"]  # one finding: one health/<check> key
    assert (f"in the fitting half of validation, group 2 ({names[2]}) has 6; in the scoring half of "
            f"validation, group 1 ({names[1]}) has 4, group 3 ({names[3]}) has 9 (fewer than 10)"
            ) in found[0].message
    assert "more validation data, or method.fit_on=train" in found[0].message
    on_train = OmegaConf.create({"method": {"C_grid": [1.0, 0.3, 0.1], "fit_on": "train"}})
    found = dfr.health(on_train, _dfr_final(fit=(500, 7, 500, 500)), splits, thresholds=LIMITS)
    assert f"in the training split, group 1 ({names[1]}) has 7" in found[0].message
    assert dfr.health(cfg, _dfr_final(score=(10, 10, 10, 10)), splits, thresholds=LIMITS) == []


def test_dfr_one_class_last_layer_names_its_l1_penalty():
    cfg = OmegaConf.create({"method": {"C_grid": [1.0, 0.3, 0.1], "fit_on": "val"}})
    final = {**_dfr_final(), **_shares((1.0, 0.0))}
    found = dfr.health(cfg, final, _dfr_splits(), thresholds=LIMITS)
    assert [f.check for f in found] == ["one_class_predictor"]
    assert "DFR's last layer predicts class" in found[0].message and "method.C_grid" in found[0].message


def test_findings_are_ranked_capped_at_three_lines_and_stored():
    findings = [Finding("a", 1, "one"), Finding("b", 3, "three"), Finding("c", 2, "two"), Finding("d", 1, "four")]
    assert console_lines(findings) == ["Health: three", "Health: two", "Health: one",
                                       "Health: 1 more finding(s) in the report"]
    metrics = as_metrics(findings)
    assert metrics["health/count"] == 4 and list(metrics)[0] == "health/b"
    assert [f.message for f in from_metrics(metrics)] == ["three", "two", "one", "four"]
    assert "- **b**: three" in report_section(findings, ["a", "b"])
    assert "No check fired (a, b)" in report_section([], ["a", "b"])


def test_bad_thresholds_name_the_argument():
    with pytest.raises(ValueError, match="shortcut_gap must be"):
        Thresholds(shortcut_gap=-1)


def test_a_head_that_did_not_raise_val_worst_group_over_its_base_says_so_per_method():
    from robustml.pipeline.heads import no_gain
    # Colored digits' AFR at its defaults: 11.0% worst group, the same as its base model.
    fired = no_gain("afr", {"val/acc_worst_group": 0.11, "base/val/acc_worst_group": 0.11}, min_gain=0.01)
    assert [f.check for f in fired] == ["head_no_gain"]
    assert "11.0% -> 11.0%" in fired[0].message and "method.lr" in fired[0].message
    worse = no_gain("dpe", {"val/acc_worst_group": 0.10, "base/val/acc_worst_group": 0.16}, min_gain=0.01)
    assert "method.balance=group" in worse[0].message
    # Just under the margin fires; at the margin and above it is quiet (DFR's 17.0% -> 49.7%).
    assert no_gain("dfr", {"val/acc_worst_group": 0.2049, "base/val/acc_worst_group": 0.195}, min_gain=0.01)
    assert not no_gain("dfr", {"val/acc_worst_group": 0.497, "base/val/acc_worst_group": 0.17}, min_gain=0.01)
    assert not no_gain("dfr", {"val/acc_worst_group": 0.5}, min_gain=0.01)  # no base metrics: no claim


def test_two_findings_of_one_check_are_both_stored():
    # AFR at both edges of its grid (gamma and reg) gives two afr_at_grid_edge findings.
    stored = as_metrics([Finding("afr_at_grid_edge", 2, "gamma edge"), Finding("afr_at_grid_edge", 2, "reg edge"),
                         Finding("not_learning", 3, "chance")])
    assert stored["health/afr_at_grid_edge"] == "gamma edge | reg edge" and stored["health/count"] == 3
    assert [f.check for f in from_metrics(stored)] == ["not_learning", "afr_at_grid_edge"]


def test_counterfactual_augmentation_that_changes_few_examples_says_so():
    # The identity lexicon on 240 movie-review snippets: 3 mention one of its words.
    fired = health.counterfactual_coverage(3, 240, thresholds=Thresholds())
    assert [f.check for f in fired] == ["counterfactual_coverage"]
    assert "only 3 of 240 training examples (1.2%)" in fired[0].message
    assert "counterfactual_lexicon" in fired[0].message
    assert not health.counterfactual_coverage(24, 240, thresholds=Thresholds())   # 10%: quiet
    assert not health.counterfactual_coverage(0, 0, thresholds=Thresholds())
