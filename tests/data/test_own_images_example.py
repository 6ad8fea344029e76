"""experiments/own_images: the generator writes the image-CSV format with the asked group counts and
correlation, and the four own_images_* experiment configs compose and run (2 steps) on its output."""

import csv
import importlib.util
import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from support import REPO, compose_train
from robustml.data.datasets.image_csv import image_csv_splits
from robustml.pipeline.run import run

SPEC = importlib.util.spec_from_file_location("make_images", REPO / "experiments" / "own_images" / "make_images.py")
make_images = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(make_images)


def fake_digits(n: int = 60, seed: int = 0) -> dict:
    """Random 28x28 strokes with digits 0-9 (n per split): the format needs no MNIST."""
    rng = np.random.default_rng(seed)
    return {split: ((rng.random((n, 28, 28)) > 0.8).astype(np.float32), np.arange(n) % 10)
            for split in ("train", "val", "test")}


def write(folder, **options):
    sizes = dict(train_per_class=20, val_per_class=4, test_per_class=6, correlation=0.9, seed=0)
    sizes.update(options)
    return make_images.make_images(folder, fake_digits(), **sizes)


def read_rows(csv_path):
    with open(csv_path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_generator_writes_the_asked_groups_and_correlation(tmp_path):
    csv_path = write(tmp_path / "own")
    rows = read_rows(csv_path)
    assert list(rows[0]) == ["path", "label", "background", "split"]
    counts = Counter((r["split"], r["label"], r["background"]) for r in rows)
    # Hand-computed: 20 per class at 0.9 -> 18 agreeing, 2 not; val 4 and test 6 per class, half each.
    assert counts == {("train", "digit<5", "land"): 18, ("train", "digit<5", "water"): 2,
                      ("train", "digit>=5", "land"): 2, ("train", "digit>=5", "water"): 18,
                      **{(s, y, b): n for s, n in (("val", 2), ("test", 3))
                         for y in ("digit<5", "digit>=5") for b in ("land", "water")}}
    for split in ("val", "test"):  # each digit used once per split
        assert len({r["path"] for r in rows if r["split"] == split}) == len([r for r in rows if r["split"] == split])
    # The background in each file is the one its row names: water is bluer than green, land is not.
    for row in rows:
        pixels = np.asarray(Image.open(tmp_path / "own" / row["path"]), dtype=float)
        assert pixels.shape == (28, 28, 3)
        blue_minus_green = (pixels[..., 2] - pixels[..., 1]).mean()
        assert (blue_minus_green > 0) == (row["background"] == "water"), row
    # robustml reads it with the same groups (label x background) per split.
    splits = image_csv_splits(csv_path, image_size=28)
    assert splits.train.group_counts().tolist() == [18, 2, 2, 18]
    assert splits.val.group_counts().tolist() == [2, 2, 2, 2]
    assert splits.test.group_counts().tolist() == [3, 3, 3, 3]
    assert splits.train.input_shape == (3, 28, 28)


def test_generator_is_seeded(tmp_path):
    first, second, other = (write(tmp_path / name, seed=seed) for name, seed in (("a", 0), ("b", 0), ("c", 1)))
    assert first.read_text() == second.read_text()
    path = read_rows(first)[0]["path"]
    assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes()
    assert first.read_text() != other.read_text()


@pytest.mark.parametrize(("option", "value", "message"), [
    ("correlation", 0.5, r"correlation must lie in \(0.5, 1\], got 0.5"),
    ("val_per_class", 5, r"val_per_class must be an integer >= 2 \(even .*got 5"),
    ("train_per_class", 31, r"train_per_class must be at most 30 .*digit<5.* got 31"),
])
def test_generator_names_bad_options(tmp_path, option, value, message):
    with pytest.raises(ValueError, match=message):
        write(tmp_path / "own", **{option: value})


def test_generator_command_line_on_mnist(tmp_path, mnist_root, capsys):
    csv_path = make_images.main(["--data-root", str(mnist_root), "--out", str(tmp_path / "own"),
                                 "--train-per-class", "10", "--val-per-class", "2",
                                 "--test-per-class", "2", "--correlation", "0.8"])
    assert "train: digit<5 on land 8, digit<5 on water 2" in capsys.readouterr().out
    assert len(read_rows(csv_path)) == 2 * (10 + 2 + 2)


@pytest.mark.parametrize("method", ["erm", "group_dro", "jtt", "dfr"])
def test_own_images_experiments_compose_and_run(tmp_path, method):
    csv_path = write(tmp_path / "own", train_per_class=16, val_per_class=16, test_per_class=4)
    published = compose_train([f"experiment=own_images_{method}"])
    assert published.data.csv == "data/own_images/images.csv" and published.data.image_size == 28
    assert published.model._target_ == "robustml.models.SmallCNN"
    assert published.trainer.l2_weight == 0.0 and published.trainer.batch_size == 64
    if method == "jtt":
        assert published.method.stage_one.max_steps == 100 and published.method.lambda_up == 20
    cfg = compose_train([f"experiment=own_images_{method}", f"data.csv={csv_path}", "debug=smoke",
                         f"paths.output_root={tmp_path / 'runs'}", "trainer.device=cpu"])
    final = run(cfg, run_dir=tmp_path / "run", summary="none")
    assert final["steps"] == 2
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [saved[f"train/count_group_{g}"] for g in range(4)] == [14, 2, 2, 14]   # round(16 * 0.9) = 14
    assert "test/acc_worst_group" in saved
