"""On-disk datasets: the image CSV, Waterbirds and CelebA loaders on files in their real formats."""

import builtins
import re
import warnings

import numpy as np
import pytest
import torch

from robustml.data import GroupedTensorDataset, InMemoryRequired
from robustml.data.datasets import celeba_splits, image_csv_splits, waterbirds_splits
from robustml.data.datasets.example_files import write_celeba, write_image_csv, write_waterbirds
from robustml.data.samplers import GroupBalancedSampler, balanced_sample_weights
from robustml.metrics import group_accuracy

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def test_image_csv_with_a_split_column_gives_labels_groups_and_inputs(tmp_path):
    csv = write_image_csv(tmp_path, per_group=4, split_column=True)
    splits = image_csv_splits(csv, image_size=16)
    assert splits.group_names == ["y=cat,background=indoor", "y=cat,background=outdoor",
                                  "y=dog,background=indoor", "y=dog,background=outdoor"]
    # per group, rows k=0..3 are train, train, val, test
    assert splits.train.group_counts().tolist() == [2, 2, 2, 2]
    assert splits.val.group_counts().tolist() == [1, 1, 1, 1]
    sample = splits.test[0]
    assert sample["x"].shape == (3, 16, 16) and sample["x"].dtype == torch.float32
    assert set(sample) == {"x", "y", "group", "attr", "index"}
    assert splits.test.paths[0].startswith("img/")


def test_image_csv_hand_written_file_and_drawn_split(tmp_path):
    write_image_csv(tmp_path, per_group=5)  # writes the images; the CSV below is typed by hand
    rows = ["path,label,background"] + [f"img/{lab}_{bg}_{k}.png,{lab},{bg}" for lab in ("cat", "dog")
                                         for bg in ("indoor", "outdoor") for k in range(5)]
    (tmp_path / "mine.csv").write_text("\n".join(rows) + "\n")
    splits = image_csv_splits(tmp_path / "mine.csv", val_fraction=0.2, test_fraction=0.2, seed=3,
                              image_size=8)
    # round(5 * 0.2) = 1 of each group in val and in test, 3 in train
    assert splits.train.group_counts().tolist() == [3, 3, 3, 3]
    assert splits.val.group_counts().tolist() == splits.test.group_counts().tolist() == [1, 1, 1, 1]
    again = image_csv_splits(tmp_path / "mine.csv", val_fraction=0.2, test_fraction=0.2, seed=3,
                             image_size=8)
    assert list(again.test.paths) == list(splits.test.paths)
    assert "seed 3" in splits.description


def test_group_computations_never_open_an_image(tmp_path, monkeypatch):
    csv = write_image_csv(tmp_path, per_group=4, split_column=True)
    splits = image_csv_splits(csv, image_size=16)  # building reads image headers (their sizes) only
    opened = []
    real_open = builtins.open

    def recording_open(file, *args, **kwargs):
        if str(file).lower().endswith(IMAGE_SUFFIXES):
            opened.append(str(file))
        return real_open(file, *args, **kwargs)

    def no_image(*args, **kwargs):
        raise AssertionError(f"an image was opened: {args}")

    monkeypatch.setattr(builtins, "open", recording_open)
    monkeypatch.setattr("PIL.Image.open", no_image)
    train = splits.train
    counts = train.group_counts()
    weights = balanced_sample_weights(train.group, num_parts=train.num_groups)
    draws = list(GroupBalancedSampler(train.group, num_parts=train.num_groups,
                                      generator=torch.Generator().manual_seed(0)))
    metrics = group_accuracy(train.y.clone(), train.y, train.group, num_groups=train.num_groups,
                             train_counts=counts)
    pruned = train.subset(torch.tensor([0, 2])).replace(y=torch.tensor([1, 1]))
    assert counts.tolist() == [2, 2, 2, 2] and weights.shape == (8,) and len(draws) == 8
    assert metrics["acc_worst_group"] == 1.0 and pruned.group_counts().sum() == 2
    assert opened == []


def test_per_split_transforms_random_in_training_fixed_in_evaluation(tmp_path):
    csv = write_image_csv(tmp_path, per_group=4, split_column=True, size=(40, 40))
    splits = image_csv_splits(csv, image_size=16, augment=True)
    train = splits.train
    a, b = train[(0, 11)]["x"], train[(0, 12)]["x"]
    assert not torch.equal(a, b)                       # random crops/flips differ by seed
    torch.testing.assert_close(train[(0, 11)]["x"], a)  # and are a function of the key
    evaluated = train.for_eval()
    torch.testing.assert_close(evaluated[0]["x"], evaluated[0]["x"])
    torch.testing.assert_close(evaluated[0]["x"], splits.val.replace(paths=train.paths[:1],
                                                                     y=train.y[:1],
                                                                     attr=train.attr[:1])[0]["x"])


def test_on_disk_data_says_what_needs_inputs_in_memory(tmp_path):
    splits = image_csv_splits(write_image_csv(tmp_path, per_group=4, split_column=True), image_size=8)
    with pytest.raises(InMemoryRequired, match="images.*OnDiskGroupedDataset.*set batch_size"):
        splits.train.x


def test_in_memory_dataset_moves_index_with_its_tensors():
    x, y = torch.randn(6, 2), torch.tensor([0, 1, 0, 1, 1, 0])
    data = GroupedTensorDataset(x, y, y.clone(), num_classes=2, attr_names=("a", "b"))
    data.noise = "kept"
    moved = data.to("meta")
    for key, value in moved.full_batch().items():
        assert value.device.type == "meta", key
    assert moved.device.type == "meta" and moved.noise == "kept"
    batch = moved.get_batch(torch.tensor([0, 3], device="meta"))
    assert batch["index"].device.type == "meta" and batch["x"].shape == (2, 2)


def test_waterbirds_published_layout(tmp_path):
    write_waterbirds(tmp_path, per_group=2)
    splits = waterbirds_splits(tmp_path, image_size=32)
    assert splits.group_names == ["y=landbird,place=land", "y=landbird,place=water",
                                  "y=waterbird,place=land", "y=waterbird,place=water"]
    for _, split in splits.items():
        assert split.group_counts().tolist() == [2, 2, 2, 2]
    assert splits.train[0]["x"].shape == (3, 32, 32)
    assert int(splits.train.group[5]) == 2 * int(splits.train.y[5]) + int(splits.train.attr[5])


def test_waterbirds_missing_folder_column_and_images_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"metadata.csv.*Pass root=<dir>.*ROBUSTML_DATA"):
        waterbirds_splits(tmp_path / "nowhere")
    folder = write_waterbirds(tmp_path, per_group=1)
    csv = folder / "metadata.csv"
    text = csv.read_text()
    csv.write_text(text.replace(",place,", ",location,"))
    with pytest.raises(ValueError, match=r"column\(s\) \['place'\] not found in .*metadata.csv; valid columns"):
        waterbirds_splits(tmp_path)
    csv.write_text(text)
    images = sorted(folder.rglob("*.jpg"))
    for image in images[:7]:
        image.unlink()
    with pytest.raises(FileNotFoundError, match=r"7 of 12 files listed in .*metadata.csv.*first: "):
        waterbirds_splits(tmp_path)


def test_celeba_official_files(tmp_path):
    folder = write_celeba(tmp_path, num_images=24, size=(178, 218))
    lines = (folder / "list_attr_celeba.txt").read_bytes().split(b"\r\n")
    assert lines[0] == b"24" and lines[1].split()[9] == b"Blond_Hair" and len(lines[2].split()) == 41
    splits = celeba_splits(tmp_path, image_size=32)
    assert splits.group_names[3] == "y=Blond_Hair,Male=Male"
    assert [len(s) for _, s in splits.items()] == [8, 8, 8]
    assert splits.train.group_counts().tolist() == [2, 2, 2, 2]
    assert splits.val[0]["x"].shape == (3, 32, 32)
    other = celeba_splits(tmp_path, target="Smiling", spurious="Young", image_size=32)
    assert other.train.group_counts().sum() == 8


def test_celeba_unknown_attribute_lists_the_valid_names(tmp_path):
    write_celeba(tmp_path, num_images=12)
    with pytest.raises(ValueError, match=r"target must be one of CelebA's 40 attributes, got "
                                         r"'Blonde'; valid names: 5_o_Clock_Shadow.*Young"):
        celeba_splits(tmp_path, target="Blonde")
    with pytest.raises(FileNotFoundError, match=r"celeba/img_align_celeba.*Pass root=<dir>"):
        celeba_splits(tmp_path / "elsewhere")


def test_celeba_shared_metadata_counts_match_the_paper_groups():
    from support import SHARED_DATA
    from robustml.data.datasets.celeba_files import read_attributes, read_partition

    folder = SHARED_DATA / "celeba"
    if not (folder / "list_attr_celeba.txt").is_file():
        pytest.skip(f"CelebA attribute files not found under {folder}")
    attributes = read_attributes(folder / "list_attr_celeba.txt")
    split = read_partition(folder / "list_eval_partition.txt", attributes.index)
    groups = 2 * attributes["Blond_Hair"].to_numpy() + attributes["Male"].to_numpy()
    assert np.bincount(groups[split == 0]).tolist() == [71_629, 66_874, 22_880, 1_387]


def test_a_split_with_an_empty_group_is_reported(tmp_path):
    csv = write_image_csv(tmp_path, per_group=4, split_column=True)
    lines = csv.read_text().splitlines()
    kept = [line for line in lines if not (line.startswith("img/dog_outdoor") and line.endswith("test"))]
    csv.write_text("\n".join(kept) + "\n")
    expected = r"the test split has no examples in group\(s\) y=dog,background=outdoor\."
    with pytest.warns(UserWarning, match=expected):
        splits = image_csv_splits(csv, image_size=8)
    assert re.search(expected, splits.description)


@pytest.mark.parametrize("edit,match", [
    (lambda t: t.replace("path,label", "file,label"), r"column\(s\) \['path'\] not found in .*images.csv"),
    (lambda t: t.replace(",cat,indoor,train", ",,indoor,train", 1), "column 'label' is empty in 1 row"),
    (lambda t: t.replace(",val\n", ",holdout\n", 1), r"unknown split name\(s\) \['holdout'\]"),
])
def test_malformed_image_csv_names_the_file_and_column(tmp_path, edit, match):
    csv = write_image_csv(tmp_path, per_group=4, split_column=True)
    csv.write_text(edit(csv.read_text()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=match):
            image_csv_splits(csv)


@pytest.mark.parametrize("text, match", [
    ("", r"images.csv is empty: expected a header row path,label,<attribute columns>\[,split\], then one "
         r"row per image"),
    ("path,label,background\n", r"images.csv has no rows: its header names the columns \['path', 'label', "
                                 r"'background'\], and one row per image must follow it"),
])
def test_an_empty_or_header_only_image_csv_names_its_path(tmp_path, text, match):
    (tmp_path / "images.csv").write_text(text)
    with pytest.raises(ValueError, match=match):
        image_csv_splits(tmp_path / "images.csv")


def test_the_readme_image_csv_example_loads(tmp_path):
    import re

    from support import REPO
    from robustml.data.datasets.example_files import write_image

    text = (REPO / "README.md").read_text()
    block = re.search(r"### Your own images.*?```\n(path,label.*?)```", text, flags=re.S).group(1)
    (tmp_path / "images.csv").write_text(block)
    rng = np.random.default_rng(0)
    for line in block.splitlines()[1:]:
        write_image(tmp_path / line.split(",")[0], 0, size=(20, 20), rng=rng)
    with pytest.warns(UserWarning, match=r"no examples in group\(s\)"):
        splits = image_csv_splits(tmp_path / "images.csv", image_size=8)
    assert [len(s) for _, s in splits.items()] == [3, 1, 1]
    assert splits.group_names[0] == "y=cat,background=indoor"


def test_waterbirds_download_unpacks_the_archive_and_checks_its_size(tmp_path, monkeypatch):
    import shutil
    import tarfile

    from robustml._torchvision import import_torchvision
    from robustml.data.datasets import waterbirds

    folder = write_waterbirds(tmp_path / "source", per_group=1)
    archive = tmp_path / "published.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        handle.add(folder, arcname=folder.name)
    fetched = []

    def fake_download(url, root, filename=None, md5=None):
        fetched.append((url, md5))
        shutil.copy(archive, f"{root}/{filename}")

    monkeypatch.setattr(import_torchvision().datasets.utils, "download_url", fake_download)
    with pytest.raises(ValueError, match="lists 12 images after download, expected 11788"):
        waterbirds_splits(tmp_path / "root", download=True, md5="0123456789abcdef" * 2)
    assert fetched == [(waterbirds.URL, "0123456789abcdef" * 2)]
    assert (tmp_path / "root" / waterbirds.FOLDER / "metadata.csv").is_file()
