"""Degenerate inputs stop with a ValueError naming the file, column or argument, expected and got."""

from __future__ import annotations

import warnings

import pytest
import torch

from robustml.data.checks import (check_columns, check_num_classes, check_split_sizes,
                                  empty_group_note, require_nonempty_groups)
from robustml.data.datasets import (celeba_splits, image_csv_splits, tabular_file_splits,
                                    waterbirds_splits)
from robustml.data.datasets.example_files import write_celeba, write_image_csv, write_waterbirds
from robustml.pipeline.run import run
from support import compose_train

TABLE = "x,sex,y,split\n" + "".join(
    f"{i},{'fm'[i % 2]},{'ab'[(i // 2) % 2]},{('train', 'train', 'val', 'test')[(i // 4) % 4]}\n"
    for i in range(32))


def _edit_split_column(csv, rule):
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join([lines[0], *(rule(line) for line in lines[1:])]) + "\n")


def test_an_image_csv_without_val_rows_names_the_file_the_column_and_the_sizes(tmp_path):
    csv = write_image_csv(tmp_path, per_group=4, split_column=True)
    _edit_split_column(csv, lambda line: line.replace(",val", ",train"))
    with pytest.raises(ValueError, match=r"images.csv, column 'split': the val split\(s\) are "
                                         r"empty; expected at least one example in each of train, "
                                         r"val, test, got train 12, val 0, test 4"):
        image_csv_splits(csv, image_size=8)


def test_an_image_csv_with_an_empty_train_split_says_so(tmp_path):
    csv = write_image_csv(tmp_path, per_group=4, split_column=True)
    _edit_split_column(csv, lambda line: line.replace(",train", ",test"))
    with pytest.raises(ValueError, match=r"column 'split': the train split\(s\) are empty.*"
                                         r"got train 0, val 4, test 12"):
        image_csv_splits(csv, image_size=8)


def test_a_drawn_split_too_small_for_val_names_the_fractions(tmp_path):
    csv = write_image_csv(tmp_path, per_group=2)
    with pytest.raises(ValueError, match=r"val_fraction=0.15, test_fraction=0.15\): the val and "
                                         r"test split\(s\) are empty"):
        image_csv_splits(csv, image_size=8)


def test_a_label_column_with_one_class_is_refused(tmp_path):
    csv = write_image_csv(tmp_path, per_group=4, split_column=True)
    csv.write_text(csv.read_text().replace(",dog,", ",cat,"))
    with pytest.raises(ValueError, match=r"images.csv, label column 'label': expected at least 2 "
                                         r"classes, got 1 \(\['cat'\]\)"):
        image_csv_splits(csv, image_size=8)
    table = tmp_path / "t.csv"
    table.write_text(TABLE.replace(",b,", ",a,"))
    with pytest.raises(ValueError, match=r"t.csv, label column 'y': expected at least 2 classes, "
                                         r"got 1 \(\['a'\]\)"):
        tabular_file_splits(table, label="y", attributes="sex", split_column="split")


def test_image_csv_refuses_the_label_as_attribute_and_reads_one_name_as_one_column(tmp_path):
    csv = write_image_csv(tmp_path, per_group=4, split_column=True)
    with pytest.raises(ValueError, match=r"attributes must not hold the label or path column\(s\) "
                                         r"\('label', 'path'\), got \['background', 'label'\]"):
        image_csv_splits(csv, attributes=["background", "label"], image_size=8)
    assert image_csv_splits(csv, attributes="background", image_size=8).train.attr_key == "background"


def test_tabular_file_refuses_the_label_as_attribute(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text(TABLE)
    with pytest.raises(ValueError, match=r"attributes must not hold the label column 'y'.*got "
                                         r"attributes=\['sex', 'y'\]"):
        tabular_file_splits(table, label="y", attributes=["sex", "y"], split_column="split")
    table.write_text(TABLE.replace(",train\n", ",test\n"))
    with pytest.raises(ValueError, match=r"t.csv, column 'split': the train split\(s\) are empty"):
        tabular_file_splits(table, label="y", attributes="sex", split_column="split")


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(image_size=0), ValueError, r"image_size must be an integer >= 1, got 0"),
    (dict(image_size="32"), TypeError, r"image_size must be an integer >= 1, got '32' \(str\)"),
    (dict(image_size=24.5), TypeError, r"image_size must be an integer >= 1, got 24.5"),
    (dict(augment="yes"), TypeError, r"augment must be true or false, got 'yes'"),
])
def test_image_options_are_validated_by_every_image_dataset(tmp_path, kwargs, error, match):
    csv = write_image_csv(tmp_path / "csv", per_group=4, split_column=True)
    write_waterbirds(tmp_path / "wb", per_group=1)
    write_celeba(tmp_path / "celeba", num_images=12)
    for build in (lambda: image_csv_splits(csv, **kwargs),
                  lambda: waterbirds_splits(tmp_path / "wb", **kwargs),
                  lambda: celeba_splits(tmp_path / "celeba", **kwargs)):
        with pytest.raises(error, match=match):
            build()


def test_waterbirds_md5_must_be_32_hex_digits(tmp_path):
    write_waterbirds(tmp_path, per_group=1)
    with pytest.raises(ValueError, match=r"md5 must be None or 32 hexadecimal digits, got 'abc'"):
        waterbirds_splits(tmp_path, md5="abc")


def test_celeba_images_share_the_attribute_parser_and_its_line_numbers(tmp_path):
    folder = write_celeba(tmp_path, num_images=12)
    attr = folder / "list_attr_celeba.txt"
    attr.write_bytes(attr.read_bytes().replace(b" 1", b" 7", 1))
    with pytest.raises(ValueError, match=r"list_attr_celeba.txt, line 3 \(image '000001.jpg'\), "
                                         r"column '[^']+': expected one of \['-1', '1'\], got '7'"):
        celeba_splits(tmp_path, image_size=8)


def test_the_helpers_name_expected_and_received_values():
    with pytest.raises(ValueError, match=r"label: column\(s\) \['z'\] not found in f.csv; valid "
                                         r"columns: \['a'\]"):
        check_columns(["a"], ["z"], source="f.csv", argument="label")
    with pytest.raises(ValueError, match=r"got train 3, val 0, test 1\. Add val rows"):
        check_split_sizes({"train": 3, "val": 0, "test": 1}, source="f.csv", how="Add val rows.")
    with pytest.raises(ValueError, match=r"expected at least 2 classes, got 0"):
        check_num_classes([], source="f.csv", column="y")
    with pytest.raises(ValueError, match=r"sampler=reweight divides .* no example of b \(counts "
                                         r"\[2, 0\]\)"):
        require_nonempty_groups(torch.tensor([0, 0]), 2, ["a", "b"], what="sampler=reweight")
    assert empty_group_note({}) == ""


def _train_without_group(tmp_path, *overrides):
    csv = write_image_csv(tmp_path / "images", per_group=4, split_column=True)
    _edit_split_column(csv, lambda line: line if not line.startswith("img/dog_outdoor") or
                       not line.endswith("train") else line[: -len("train")] + "test")
    cfg = compose_train(["data=image_csv", f"data.csv={csv}", "data.image_size=8", "model=cnn",
                         "model.channels=[2,2,2]", "trainer.batch_size=4", "trainer.max_steps=2",
                         "trainer.progress=false", *overrides])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(cfg, run_dir=tmp_path / "run")


@pytest.mark.parametrize("overrides,match", [
    (["sampler=group_balanced"], r"sampler=group_balanced divides by each part's training count, "
                                 r"but the training split has no example of y=dog,background=outdoor"),
    (["sampler=reweight"], r"sampler=reweight divides .* no example of y=dog,background=outdoor"),
    (["loss=group_dro", "loss.criterion.adjustment=1.0"], r"adjustment=1.0 > 0 divides by "
                                                           r"sqrt\(group_counts\)"),
])
def test_methods_that_divide_by_a_group_count_stop_on_an_empty_training_group(tmp_path, overrides,
                                                                              match):
    with pytest.raises(ValueError, match=match):
        _train_without_group(tmp_path, *overrides)


def test_an_empty_training_group_is_warned_and_reported_and_plain_erm_still_trains(tmp_path):
    with pytest.warns(UserWarning, match=r"the train split has no examples in group\(s\) "
                                         r"y=dog,background=outdoor"):
        csv = write_image_csv(tmp_path / "images", per_group=4, split_column=True)
        _edit_split_column(csv, lambda line: line if not line.startswith("img/dog_outdoor") or
                           not line.endswith("train") else line[: -len("train")] + "test")
        image_csv_splits(csv, image_size=8)
    final = _train_without_group(tmp_path)
    assert final["train/count_group_3"] == 0
    assert "stop with an error" in (tmp_path / "run" / "report.md").read_text()
