"""Write tiny data sets in the exact on-disk formats of Waterbirds, CelebA and the image CSV.

For trying the on-disk pipeline (and its configs) without downloading anything, and for tests and
benchmarks. The images are noise with a class-dependent mean color, written by PIL as JPEG or
PNG; only the file formats are real.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robustml.data.datasets.celeba import ATTR_FILE, IMAGES, PARTITION_FILE
from robustml.data.datasets.waterbirds import FOLDER

CELEBA_NAMES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
    "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling "
    "Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
    "Wearing_Necktie Young").split()


def write_image(path: Path, label: int, *, size: tuple[int, int], rng: np.random.Generator) -> None:
    """Write a ``size = (width, height)`` RGB image whose mean color depends on ``label``."""
    from PIL import Image

    base = np.array([60, 120, 180])[[label % 3, (label + 1) % 3, (label + 2) % 3]]
    pixels = np.clip(base + rng.normal(0, 40, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def write_waterbirds(root: str | Path, *, per_group: int = 2, size: tuple[int, int] = (48, 40),
                     seed: int = 0) -> Path:
    """Write ``root/waterbird_complete95_forest2water2/`` with ``per_group`` JPEGs per group and split.

    Returns the folder; its ``metadata.csv`` has the published columns and codes.
    """
    folder = Path(root) / FOLDER
    rng = np.random.default_rng(seed)
    rows = ["img_id,img_filename,y,split,place,place_filename"]
    img_id = 1
    for split in range(3):
        for y in range(2):
            for place in range(2):
                for _ in range(per_group):
                    name = f"{y:03d}.Bird_{y}/Bird_{y}_{img_id:04d}.jpg"
                    write_image(folder / name, y, size=size, rng=rng)
                    rows.append(f"{img_id},{name},{y},{split},{place},/b/bamboo_forest/{img_id:08d}.jpg")
                    img_id += 1
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    return folder


def write_celeba(root: str | Path, *, num_images: int = 24, size: tuple[int, int] = (178, 218),
                 seed: int = 0) -> Path:
    """Write ``root/celeba/`` with ``num_images`` JPEGs and the two official text files (CRLF).

    Every (Blond_Hair, Male) combination occurs in every split; other attributes are random.
    Returns the folder.
    """
    folder = Path(root) / "celeba"
    rng = np.random.default_rng(seed)
    blond, male = CELEBA_NAMES.index("Blond_Hair"), CELEBA_NAMES.index("Male")
    attr_lines = [str(num_images), " ".join(CELEBA_NAMES)]
    partition_lines = []
    for i in range(num_images):
        name = f"{i + 1:06d}.jpg"
        values = rng.choice([-1, 1], size=len(CELEBA_NAMES))
        values[blond], values[male] = (1 if i % 2 else -1), (1 if (i // 2) % 2 else -1)
        write_image(folder / IMAGES / name, int(values[blond] == 1), size=size, rng=rng)
        attr_lines.append(name + " " + " ".join(f"{v:2d}" for v in values))
        partition_lines.append(f"{name} {min(2, 3 * i // num_images)}")
    (folder / ATTR_FILE).write_bytes(("\r\n".join(attr_lines) + "\r\n").encode())
    (folder / PARTITION_FILE).write_text("\n".join(partition_lines) + "\n")
    return folder


def write_image_csv(root: str | Path, *, per_group: int = 6, size: tuple[int, int] = (32, 32),
                    suffix: str = ".png", split_column: bool = False, seed: int = 0) -> Path:
    """Write images and ``root/images.csv`` (``path,label,background[,split]``); return the CSV.

    Labels are ``cat``/``dog``, the attribute ``background`` is ``indoor``/``outdoor``, and each
    of the four groups has ``per_group`` images under ``root/img/``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    rows = ["path,label,background" + (",split" if split_column else "")]
    for y, label in enumerate(("cat", "dog")):
        for background in ("indoor", "outdoor"):
            for k in range(per_group):
                name = f"img/{label}_{background}_{k}{suffix}"
                write_image(root / name, y, size=size, rng=rng)
                split = ",".join(["", ("train", "train", "val", "test")[k % 4]]) if split_column else ""
                rows.append(f"{name},{label},{background}{split}")
    csv = root / "images.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


WRITERS = {"image_csv": write_image_csv, "waterbirds": write_waterbirds, "celeba": write_celeba}


def main(argv: list[str] | None = None) -> None:
    """``python -m robustml.data.datasets.example_files KIND DIR``: write a tiny example data set."""
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(WRITERS))
    parser.add_argument("root", type=Path, help="folder to write into (created)")
    args = parser.parse_args(argv)
    written = WRITERS[args.kind](args.root)
    print(f"wrote a tiny {args.kind} example under {written or args.root}")


if __name__ == "__main__":
    main()
