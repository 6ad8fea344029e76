"""Small files in the exact on-disk formats of UCI Adult and CelebA's attribute files, for tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# One row per (sex, income) combination pattern; fields in the order of adult.names.
ROW = "{age}, {work}, {fnlwgt}, Bachelors, 13, Never-married, {occ}, Not-in-family, {race}, {sex}, 0, 0, 40, {country}, {income}"


def _rows(n: int, *, sex: str, income: str, start: int, test: bool = False, missing: int = 0) -> list[str]:
    rows = []
    for i in range(n):
        work = "?" if i < missing else ("Private" if i % 2 else "State-gov")
        rows.append(ROW.format(age=start + i, work=work, fnlwgt=10_000 + 7 * i, occ="Sales",
                               race="White" if i % 3 else "Black", sex=sex, country="United-States",
                               income=income + ("." if test else "")))
    return rows


def write_adult(root: Path, *, test_age_offset: int = 0) -> Path:
    """Write adult.data (40 rows, 3 with '?') and adult.test (first line, labels with '.')."""
    folder = root / "adult"
    folder.mkdir(parents=True, exist_ok=True)
    data = (_rows(12, sex="Female", income="<=50K", start=20, missing=2)
            + _rows(8, sex="Female", income=">50K", start=30)
            + _rows(10, sex="Male", income="<=50K", start=40, missing=1)
            + _rows(10, sex="Male", income=">50K", start=50))
    test = [_rows(4, sex=s, income=c, start=25 + test_age_offset, test=True, missing=int(s == "Male"))
            for s in ("Female", "Male") for c in ("<=50K", ">50K")]
    (folder / "adult.data").write_text("\n".join(data) + "\n\n")
    (folder / "adult.test").write_text("|1x3 Cross validator\n" + "\n".join(sum(test, [])) + "\n")
    return root


NAMES = ("5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
         "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses "
         "Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache "
         "Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks "
         "Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick "
         "Wearing_Necklace Wearing_Necktie Young").split()
BLOND, MALE = NAMES.index("Blond_Hair"), NAMES.index("Male")


def write_celeba(root: Path, values: np.ndarray, partition: np.ndarray, *, eol: str = "\r\n") -> Path:
    """Write the two files in the official layout: values (N, 40) of -1/1, partition (N,) of 0/1/2."""
    folder = root / "celeba"
    folder.mkdir(parents=True, exist_ok=True)
    images = [f"{i + 1:06d}.jpg" for i in range(len(values))]
    rows = [f"{image} " + " ".join(f"{v:2d}" for v in row) for image, row in zip(images, values)]
    (folder / "list_attr_celeba.txt").write_bytes(
        eol.join([str(len(values)), " ".join(NAMES) + " ", *rows, ""]).encode())
    (folder / "list_eval_partition.txt").write_bytes(
        eol.join([*(f"{image} {p}" for image, p in zip(images, partition)), ""]).encode())
    return root


def tiny_values(n: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random -1/1 attributes where every partition has all four Blond_Hair x Male groups."""
    rng = np.random.default_rng(seed)
    values = rng.choice([-1, 1], size=(n, len(NAMES)))
    values[:, BLOND] = np.tile([-1, -1, 1, 1], n // 4)
    values[:, MALE] = np.tile([-1, 1, -1, 1], n // 4)
    partition = np.repeat([0, 1, 2], n // 3)
    return values, partition
