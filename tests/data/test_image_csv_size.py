"""``image_csv``'s input size: the images' own size by default (``image_size=None``), an error naming
two sizes when they differ, and a warning when a set ``image_size`` resizes the images up."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from robustml.data.datasets import image_csv_splits
from robustml.data.datasets.example_files import write_image_csv
from robustml.data.ondisk import IMAGENET_MEAN, IMAGENET_STD
from robustml.pipeline.instantiate import build_from
from support import compose_train


def test_without_image_size_the_inputs_are_the_images_own_pixels(tmp_path):
    csv = write_image_csv(tmp_path, per_group=4, size=(20, 12), split_column=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no resizing, so nothing to warn about
        splits = image_csv_splits(csv)
    assert splits.input_shape == (3, 12, 20) and "20x12 inputs (the images' own size)" in splits.description
    sample = splits.val[0]
    pixels = np.asarray(Image.open(tmp_path / splits.val.paths[0]).convert("RGB"), dtype=np.float32) / 255
    expected = (pixels - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)   # normalization only
    np.testing.assert_allclose(sample["x"].numpy(), expected.transpose(2, 0, 1), atol=1e-6)
    augmented = image_csv_splits(csv, augment=True).train[(0, 7)]["x"]       # a random crop, same size
    assert augmented.shape == (3, 12, 20)


def test_images_of_several_sizes_ask_for_data_image_size_naming_two_sizes(tmp_path):
    csv = write_image_csv(tmp_path, per_group=4, size=(20, 12), split_column=True)
    Image.new("RGB", (30, 30)).save(tmp_path / "img" / "dog_outdoor_3.png")
    cfg = compose_train(["data=image_csv", f"data.csv={csv}"])
    assert cfg.data.image_size is None  # the config's default
    with pytest.raises(ValueError, match=r"^data\.image_size=null keeps the images' own size, but the images "
                                         r"listed in .*images\.csv have 2 sizes, e.g\. 20x12 \(15 images, first "
                                         r"img/cat_indoor_0\.png\) and 30x30 \(1, first img/dog_outdoor_3\.png\); "
                                         r"set data\.image_size=<side>"):
        build_from(cfg, "data")
    assert build_from(compose_train(["data=image_csv", f"data.csv={csv}", "data.image_size=8"]),
                      "data").input_shape == (3, 8, 8)


def test_an_image_size_that_resizes_up_says_so_in_one_warning(tmp_path):
    csv = write_image_csv(tmp_path, per_group=4, size=(20, 12), split_column=True)
    with pytest.warns(UserWarning) as caught:
        splits = image_csv_splits(csv, image_size=32)
    assert len(caught) == 1 and splits.input_shape == (3, 32, 32)
    assert str(caught[0].message).startswith(
        "image_size=32 resizes the images up: 16 of the 16 checked have a shorter side below 36 px, the side "
        "they are resized to before the 32x32 center crop (e.g. img/cat_indoor_0.png, 20x12)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image_csv_splits(csv, image_size=8)  # 12 px resized to 9 px: down, no warning
