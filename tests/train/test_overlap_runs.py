"""A run on data that declares overlapping groups writes their metrics and report tables, for the
trained model and for a last-layer head (DFR)."""

from __future__ import annotations

import json

import pytest

from robustml.pipeline.audit import audit_run
from robustml.pipeline.run import run
from support import compose_train

DATA = ["data._target_=text_fixtures.overlap_digits", "trainer.max_steps=20", "trainer.eval_every=10",
        "trainer.progress=false"]


@pytest.mark.parametrize("method", [[], ["experiment=colored_digits_dfr"]], ids=["erm", "dfr"])
def test_a_run_reports_the_overlapping_groups(tmp_path, method):
    cache = [f"method.cache_dir={tmp_path / 'features'}"] if method else []
    cfg = compose_train([*method, *DATA, *cache])
    final = run(cfg, run_dir=tmp_path / "run", summary="none")
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for split in ("val", "test"):
        # red x class c is group (c, red): the overlapping metric equals the group's own.
        assert written[f"{split}/overlap_acc_red_y1"] == pytest.approx(written[f"{split}/acc_group_2"])
        assert written[f"{split}/overlap_count_green_y0"] == written[f"{split}/count_group_1"]
        accs = [v for k, v in written.items() if k.startswith(f"{split}/overlap_acc_") and
                not k.endswith("worst_group") and v is not None]
        assert written[f"{split}/overlap_acc_worst_group"] == min(accs)
    if method:
        assert "base/test/overlap_acc_worst_group" in final
    else:  # the audit of the run reports them too
        audit = audit_run(tmp_path / "run", out_dir=tmp_path / "audit", split="test")
        record = json.loads((audit / "audit.json").read_text())["per_group"]
        assert record["test/overlap_acc_worst_group"] == written["test/overlap_acc_worst_group"]
        assert "## Overlapping groups: test" in (audit / "audit.md").read_text()
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Overlapping groups: test" in report and "even_index" in report


def test_selection_by_the_worst_overlapping_group(tmp_path):
    cfg = compose_train([*DATA, "trainer.select=worst_overlap_group"])
    final = run(cfg, run_dir=tmp_path / "run", summary="none")
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    best = max(history, key=lambda record: record["val/overlap_acc_worst_group"])  # first of ties
    assert final["selected_step"] == best["step"]
    assert "overlapping groups" in (tmp_path / "run" / "report.md").read_text()


def test_selection_by_overlapping_groups_without_them_is_refused(tmp_path):
    cfg = compose_train(["trainer.max_steps=2", "trainer.progress=false", "trainer.select=worst_overlap_group"])
    with pytest.raises(ValueError, match="trainer.select='worst_overlap_group'.*declares none"):
        run(cfg, run_dir=tmp_path / "run", summary="none")
