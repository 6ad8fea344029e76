"""The console summary: the story of a run in one screen."""

from __future__ import annotations

from robustml.report import render_console_summary

GROUPS = ["y=0,color=red", "y=0,color=green", "y=1,color=red", "y=1,color=green"]
FINAL = {
    "selection": "worst_group", "selected_step": 125, "steps": 300,
    "test/acc_group_0": 0.818, "test/acc_group_1": 0.184, "test/acc_group_2": 0.170,
    "test/acc_group_3": 0.905, "test/count_group_0": 22, "test/count_group_1": 163,
    "test/count_group_2": 153, "test/count_group_3": 21, "test/worst_group": 2,
    "test/acc_worst_group": 0.170, "test/acc_avg": 0.259, "test/acc_weighted_avg": 0.755,
    "test/cf_flip_rate": 0.73, "val/acc_worst_group": 0.3,
}
USES = {"training": "none", "selection": "validation group labels (val worst-group accuracy)",
        "evaluation": "group labels of val and test"}


def _summary(final=FINAL) -> str:
    return render_console_summary(final, title="colored_digits_erm (seed 0)", group_names=GROUPS,
                                  group_label_use=USES, report_path="runs/x/report.md",
                                  attr_key="color")


def test_summary_fits_one_screen_and_tells_the_story():
    text = _summary()
    lines = text.splitlines()
    assert len(lines) <= 24
    assert lines[0] == "colored_digits_erm (seed 0)"
    assert "step 125 of 300, selected by worst_group on the validation split" in text
    worst_row = next(line for line in lines if line.startswith("| 2 "))
    assert "y=1,color=red" in worst_row and "153" in worst_row and "17.0" in worst_row
    assert worst_row.rstrip().endswith("<- worst |")
    assert sum("<- worst" in line for line in lines) == 1
    assert "worst-group accuracy    17.0%  group 2, y=1,color=red" in text
    assert "average accuracy        25.9%  over all 359 test examples" in text
    assert "train-mix average       75.5%  the average if test had training's group mix" in text
    assert "counterfactual flips    73.0%  of predictions change when only color is changed" in text
    assert "Group labels used for training: none" in text
    assert "Group labels used for model selection: validation group labels" in text
    assert lines[-1] == "Full report: runs/x/report.md"


def test_flips_over_part_of_the_split_say_how_many_examples_had_a_counterfactual():
    # Text: only the examples that mention a lexicon word have a counterfactual.
    final = {**FINAL, "test/cf_no_counterfactual": 236, "test/cf_count_group_0": 1, "test/cf_count_group_1": 3}
    assert ("of predictions change under the counterfactual edit, over the 4 test examples that have "
            "one (236 have none)") in _summary(final)


def test_summary_leaves_out_what_the_run_does_not_have():
    final = {k: v for k, v in FINAL.items() if k not in ("test/cf_flip_rate", "test/acc_weighted_avg")}
    text = _summary(final)
    assert "counterfactual" not in text and "train-mix" not in text
    assert "worst-group accuracy" in text
