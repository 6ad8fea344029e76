"""Tests for robustml.report: JSON writers, the markdown report and the plots."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from robustml.report import (append_jsonl, markdown_table, plot_group_accuracy, plot_history,
                             render_report_md, write_metrics_json, write_report_md)
from robustml.report.tables import atomic_path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GROUP_NAMES = ["y=0,place=land", "y=0,place=water", "y=1,place=land", "y=1,place=water"]


def make_final():
    """A hand-made final dict: val has an empty group 2; test's worst group is 3."""
    return {
        "val/acc_group_0": 0.95, "val/acc_group_1": 0.8125, "val/acc_group_2": math.nan,
        "val/acc_group_3": 0.75,
        "val/count_group_0": 400, "val/count_group_1": 16, "val/count_group_2": 0,
        "val/count_group_3": 100,
        "val/acc_worst_group": 0.75, "val/worst_group": 3, "val/acc_avg": 0.9,
        "val/acc_weighted_avg": 0.9234, "val/acc_group_mean": 0.8372,
        "test/acc_group_0": 0.99, "test/acc_group_1": 0.6, "test/acc_group_2": 0.7,
        "test/acc_group_3": 0.98,
        "test/count_group_0": 1000, "test/count_group_1": 1000, "test/count_group_2": 600,
        "test/count_group_3": 400,
        "test/acc_worst_group": 0.6, "test/worst_group": 1, "test/acc_avg": 0.8,
        "test/acc_weighted_avg": 0.97, "test/acc_group_mean": 0.8178,
        "selected_step": 1200, "selection": "val/acc_worst_group",
    }


def table_under(markdown, heading):
    """Parse the first markdown table after ``heading`` into a list of cell lists (no header)."""
    lines = markdown.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip()[1:-1].split(" | ")])
    return rows


def render(**overrides):
    kwargs = dict(title="Waterbirds, Group DRO", final=make_final(), group_names=GROUP_NAMES,
                  group_label_use="Training (Group DRO weights) and model selection.",
                  notes=["Seed 0.", "Average is over the test split."],
                  extra_tables=["| a | b |\n| - | - |\n| 1 | 2 |\n"])
    kwargs.update(overrides)
    return render_report_md(**kwargs)


def test_summary_table_has_one_row_per_split():
    rows = table_under(render(), "## Summary")
    assert rows == [
        ["val", "75.0", "y=1,place=water (3)", "90.0", "92.3", "83.7"],
        ["test", "60.0", "y=0,place=water (1)", "80.0", "97.0", "81.8"],
    ]


def test_per_group_tables_mark_the_worst_group_and_empty_groups():
    text = render()
    val = table_under(text, "## Per-group accuracy: val")
    assert val == [
        ["0", "y=0,place=land", "400", "95.0", ""],
        ["1", "y=0,place=water", "16", "81.2", ""],  # 81.25 is exact; rounds half to even
        ["2", "y=1,place=land", "0", "n/a", ""],
        ["3", "y=1,place=water", "100", "75.0", "<- worst"],
    ]
    test = table_under(text, "## Per-group accuracy: test")
    assert [row[4] for row in test] == ["", "<- worst", "", ""]
    assert [row[3] for row in test] == ["99.0", "60.0", "70.0", "98.0"]


def test_sections_come_in_order_with_text_verbatim():
    text = render()
    order = ["# Waterbirds, Group DRO", "## Summary", "## Run", "## Per-group accuracy: val",
             "## Per-group accuracy: test", "## What group labels were used for",
             "Training (Group DRO weights) and model selection.", "## Notes", "- Seed 0.",
             "- Average is over the test split.", "| a | b |\n| - | - |\n| 1 | 2 |"]
    positions = [text.index(part) for part in order]
    assert positions == sorted(positions)
    assert text.endswith("| 1 | 2 |\n")
    assert table_under(text, "## Run") == [["selected_step", "1200"],
                                           ["selection", "val/acc_worst_group"]]


def test_missing_values_render_as_na():
    final = make_final()
    final.update({"val/acc_weighted_avg": None, "val/worst_group": -1,
                  "val/acc_worst_group": None})
    del final["test/acc_group_mean"]
    rows = table_under(render(final=final), "## Summary")
    assert rows[0][1:5] == ["n/a", "n/a", "90.0", "n/a"]
    assert rows[1][5] == "n/a"


def test_report_errors_name_what_is_wrong():
    final = make_final()
    del final["test/count_group_2"]
    with pytest.raises(ValueError, match="final must contain 'test/count_group_2'"):
        render(final=final)
    with pytest.raises(ValueError, match="final must contain 'train/worst_group'"):
        render(splits=("val", "train"))
    with pytest.raises(ValueError, match="group_label_use must be a non-empty string"):
        render(group_label_use=" ")
    with pytest.raises(TypeError, match="splits must be a sequence of split names"):
        render(splits="val")


def test_markdown_table_pads_and_escapes():
    table = markdown_table(["name", "n"], [["a|b", 1], ["long name", 22]])
    assert table.splitlines() == [
        "| name      | n   |",
        "| --------- | --- |",
        "| a\\|b      | 1   |",
        "| long name | 22  |",
    ]
    with pytest.raises(ValueError, match=r"rows\[1\] must have 2 cells to match headers, got 1"):
        markdown_table(["a", "b"], [[1, 2], [3]])


def strict_loads(text):
    def reject(token):
        raise ValueError(f"non-strict JSON token {token}")
    return json.loads(text, parse_constant=reject)


def test_metrics_json_is_strict_sorted_and_round_trips(tmp_path):
    path = tmp_path / "run" / "metrics.json"
    metrics = {"val/acc_group_2": math.nan, "b": np.float32(0.5), "a": torch.tensor(3),
               "nested": {"x": [1.5, math.nan]}, "name": "erm", "ok": True}
    write_metrics_json(path, metrics)
    text = path.read_text()
    loaded = strict_loads(text)
    assert loaded == {"val/acc_group_2": None, "b": 0.5, "a": 3, "nested": {"x": [1.5, None]},
                      "name": "erm", "ok": True}
    assert list(loaded) == sorted(loaded)
    assert text.endswith("}\n")


def test_metrics_json_rejects_infinity_and_unknown_types(tmp_path):
    path = tmp_path / "metrics.json"
    with pytest.raises(ValueError, match=r"metrics\['train/loss'\] must be finite or NaN.*inf"):
        write_metrics_json(path, {"train/loss": math.inf})
    with pytest.raises(TypeError, match=r"metrics\['t'\] must be a number.*got Tensor"):
        write_metrics_json(path, {"t": torch.zeros(2)})
    with pytest.raises(TypeError, match="metrics must be a dict, got list"):
        write_metrics_json(path, [1])
    assert list(tmp_path.iterdir()) == []


def test_append_jsonl_appends_strict_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    records = [{"step": i, "val/acc_worst_group": 0.1 * i if i else math.nan} for i in range(3)]
    for record in records:
        append_jsonl(path, record)
    lines = path.read_text().splitlines()
    assert [strict_loads(line) for line in lines] == [
        {"step": 0, "val/acc_worst_group": None},
        {"step": 1, "val/acc_worst_group": 0.1},
        {"step": 2, "val/acc_worst_group": 0.2}]


def test_atomic_writes_leave_no_temporary_files(tmp_path):
    write_metrics_json(tmp_path / "metrics.json", {"a": 1})
    write_metrics_json(tmp_path / "metrics.json", {"a": 2})
    write_report_md(tmp_path / "report.md", title="t", final=make_final(),
                    group_names=GROUP_NAMES, group_label_use="Nothing.")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "report.md"]
    assert strict_loads((tmp_path / "metrics.json").read_text()) == {"a": 2}
    assert (tmp_path / "report.md").read_text() == render_report_md(
        title="t", final=make_final(), group_names=GROUP_NAMES, group_label_use="Nothing.")


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "report.md"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000


def test_plot_group_accuracy_writes_a_png(tmp_path):
    path = tmp_path / "plots" / "group_accuracy.png"
    plot_group_accuracy(path, make_final(), GROUP_NAMES)
    assert_png(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["group_accuracy.png"]
    final = make_final()
    del final["test/acc_group_1"]
    with pytest.raises(ValueError, match="final must contain 'test/acc_group_1'"):
        plot_group_accuracy(tmp_path / "x.png", final, GROUP_NAMES)


def test_plot_history_writes_a_png_and_skips_missing_keys(tmp_path):
    history = [{"step": 0, "train/q_0": 0.5, "train/q_1": 0.5},
               {"step": 10, "val/acc_worst_group": 0.4, "val/acc_avg": None},  # NaN via JSON
               {"step": 20, "train/q_0": 0.3, "train/q_1": 0.7},
               {"step": 20, "val/acc_worst_group": 0.6, "val/acc_avg": 0.9}]
    path = tmp_path / "weights.png"
    assert plot_history(path, history, ["train/q_0", "train/q_1", "train/q_9"],
                        title="Group weights", ylabel="q") is True
    assert_png(path)
    assert plot_history(tmp_path / "acc.png", history, ["val/acc_worst_group", "val/acc_avg"],
                        title="Validation", ylabel="accuracy") is True
    assert_png(tmp_path / "acc.png")


def test_plot_history_without_any_key_writes_nothing(tmp_path):
    path = tmp_path / "none.png"
    assert plot_history(path, [{"step": 0, "a": 1.0}], ["b"], title="t", ylabel="y") is False
    assert not path.exists()
    with pytest.raises(ValueError, match="keys must be a non-empty sequence"):
        plot_history(path, [], [], title="t", ylabel="y")
    with pytest.raises(ValueError, match=r"history\[1\] holds 'a' but no 'step'"):
        plot_history(path, [{"step": 0, "a": 1.0}, {"a": 2.0}], ["a"], title="t", ylabel="y")
