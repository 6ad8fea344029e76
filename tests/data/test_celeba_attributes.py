"""CelebA attributes: the official text formats (CRLF, -1/1), inputs without the spurious attribute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from robustml.data.datasets.celeba_attributes import celeba_attributes_splits
from support import SHARED_DATA
from tabular_fixtures import BLOND, MALE, NAMES, tiny_values, write_celeba


@pytest.fixture
def celeba_root(tmp_path) -> tuple[Path, np.ndarray, np.ndarray]:
    values, partition = tiny_values()
    return write_celeba(tmp_path, values, partition), values, partition


@pytest.mark.parametrize("eol", ["\r\n", "\n"])
def test_loader_reads_the_official_format(tmp_path, eol):
    values, partition = tiny_values()
    splits = celeba_attributes_splits(write_celeba(tmp_path, values, partition, eol=eol))
    inputs = [i for i in range(len(NAMES)) if i not in (BLOND, MALE)]
    for code, split in enumerate((splits.train, splits.val, splits.test)):
        rows = partition == code
        expected_x = torch.from_numpy((values[rows][:, inputs] == 1).astype(np.float32))
        assert torch.equal(split.x, expected_x)
        assert torch.equal(split.y, torch.from_numpy((values[rows, BLOND] == 1).astype(np.int64)))
        assert torch.equal(split.attr, torch.from_numpy((values[rows, MALE] == 1).astype(np.int64)))
        assert split.group_counts().tolist() == [4, 4, 4, 4]
    assert splits.input_shape == (38,)
    assert "Blond_Hair" not in splits.feature_names and "Male" not in splits.feature_names
    assert splits.group_names[3] == "y=Blond_Hair,Male=yes"
    assert "Train group counts: y=not_Blond_Hair,Male=no 4" in splits.description


def test_target_spurious_and_exclusions_are_config(celeba_root):
    root, values, _ = celeba_root
    splits = celeba_attributes_splits(root, target="Smiling", spurious="Young", exclude=["Bald"])
    assert splits.input_shape == (37,)
    assert {"Smiling", "Young", "Bald"}.isdisjoint(splits.feature_names)
    assert "Male" in splits.feature_names and "Blond_Hair" in splits.feature_names
    assert torch.equal(splits.train.y, torch.from_numpy(
        (values[:16, NAMES.index("Smiling")] == 1).astype(np.int64)))


@pytest.mark.parametrize("kwargs", [dict(target="Blond"), dict(spurious="male"), dict(exclude="Hat")])
def test_unknown_attribute_lists_the_40_valid_names(celeba_root, kwargs):
    with pytest.raises(ValueError) as error:
        celeba_attributes_splits(celeba_root[0], **kwargs)
    message = str(error.value)
    assert list(kwargs)[0] in message and "valid names" in message
    assert all(name in message for name in NAMES)


def test_empty_group_is_warned_in_the_description(tmp_path):
    values, partition = tiny_values()
    values[(partition == 1) & (values[:, MALE] == 1), BLOND] = -1  # no blond men in val
    splits = celeba_attributes_splits(write_celeba(tmp_path, values, partition))
    assert splits.val.group_counts()[3] == 0
    assert "Warning: the val split has no examples in group(s) y=Blond_Hair,Male=yes" in \
        splits.description


@pytest.mark.parametrize("edit,match", [
    (lambda a, p: (a.replace(b" 1", b" 2", 1), p),
     r"list_attr_celeba.txt, line 3 \(image '000001.jpg'\), column '[^']+': expected one of "
     r"\['-1', '1'\], got '2'"),
    (lambda a, p: (a.replace(b" 1\r\n", b"\r\n", 1), p),
     r"list_attr_celeba.txt, line \d+: expected 41 fields \('<image>' and 40 value\(s\)\), got 40"),
    (lambda a, p: (b"7\r\n" + a.split(b"\r\n", 1)[1], p), "announces 7 images but 48"),
    (lambda a, p: (a.replace(b"Young", b"", 1), p), "line 2: expected 40 distinct"),
    (lambda a, p: (a, p.replace(b"000002.jpg 0", b"000002.jpg 5")),
     r"list_eval_partition.txt, line 2 \(image '000002.jpg'\), column 'partition': expected one "
     r"of \['0', '1', '2'\], got '5'"),
    (lambda a, p: (a, p.rsplit(b"\r\n", 2)[0] + b"\r\n"), "1 missing"),
])
def test_malformed_files_are_named(celeba_root, edit, match):
    folder = celeba_root[0] / "celeba"
    attr, part = folder / "list_attr_celeba.txt", folder / "list_eval_partition.txt"
    new_attr, new_part = edit(attr.read_bytes(), part.read_bytes())
    attr.write_bytes(new_attr)
    part.write_bytes(new_part)
    with pytest.raises(ValueError, match=match):
        celeba_attributes_splits(celeba_root[0])


def test_missing_files_name_the_layout_and_the_settings(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        celeba_attributes_splits(tmp_path)
    for text in ("list_attr_celeba.txt", "list_eval_partition.txt", str(tmp_path / "celeba"),
                 "Pass root=<dir>", "ROBUSTML_DATA", "pass download=True"):
        assert text in str(error.value)


@pytest.mark.skipif(not (SHARED_DATA / "celeba" / "list_attr_celeba.txt").is_file(),
                    reason=f"CelebA attribute files not found under {SHARED_DATA}/celeba")
def test_real_files_give_the_published_partition_and_group_counts():
    splits = celeba_attributes_splits(SHARED_DATA)
    assert [len(s) for _, s in splits.items()] == [162_770, 19_867, 19_962]
    assert splits.train.group_counts().tolist() == [71_629, 66_874, 22_880, 1_387]


def test_download_uses_torchvision_file_ids_and_checksums(tmp_path, monkeypatch):
    from robustml._torchvision import import_torchvision

    datasets = import_torchvision().datasets
    fixture = write_celeba(tmp_path / "fixture", *tiny_values()) / "celeba"
    calls = []

    def fake_download(file_id, root, filename, md5):
        calls.append((file_id, filename, md5))
        Path(root).mkdir(parents=True, exist_ok=True)
        (Path(root) / filename).write_bytes((fixture / filename).read_bytes())

    monkeypatch.setattr(datasets.utils, "download_file_from_google_drive", fake_download)
    splits = celeba_attributes_splits(tmp_path / "root", download=True)
    expected = {(i, f, m) for i, m, f in datasets.CelebA.file_list
                if f in ("list_attr_celeba.txt", "list_eval_partition.txt")}
    assert set(calls) == expected and len(calls) == 2
    assert len(splits.train) == 16
