"""CivilComments as WILDS publishes it (Koh et al., ICML 2021; Borkan et al., 2019): toxicity of
online comments, with mentions of identities as the spurious attribute.

The file is WILDS' ``all_data_with_identities.csv`` (CivilComments-WILDS v1.0, 448,000 comments):
a leading unnamed index column, then ``id``, ``comment_text``, ``split`` (``train`` / ``val`` /
``test``), ``toxicity`` and the other toxicity scores, and one column per identity with the
fraction of raters who saw it mentioned, among them the eight WILDS groups on: ``male``,
``female``, ``LGBTQ``, ``christian``, ``muslim``, ``other_religions``, ``black``, ``white``.

- Label: ``toxicity >= 0.5`` (``non_toxic`` 0, ``toxic`` 1), as WILDS.
- An identity is mentioned when its score is ``>= 0.5``. A missing score (NaN: the comment has no
  identity annotation) counts as not mentioned, as in WILDS (``NaN >= 0.5`` is false).
- Training groups (the ``group`` partition): label x ``attribute``, 4 groups. By default
  ``any_identity``, whether any of the eight identities is mentioned: the coarse groups of DFR
  (Kirichenko et al., 2023, after Idrissi et al.'s BalancingGroups setup). ``identity_any`` is
  the file's own column of that name, which WILDS derives from all 24 identity columns (also
  heterosexual, asian, latino, the disability columns, ...): JTT's coarse attribute (Liu et al.,
  2021, ``confounder_name = "identity_any"``). ``attribute=<identity>`` uses one identity.
- WILDS' evaluation groups: each of the eight identities x label (16 groups that overlap: a
  comment can mention several identities, or none), worst over them. They cannot be the one-id
  ``group`` partition; the identity mentions are kept as the overlapping attributes
  (:data:`robustml.metrics.OVERLAP_EXTRA`, bool ``(N, 8)``), and evaluation reports each
  identity x label group's accuracy and count and the worst over them
  (``<split>/overlap_acc_<identity>_y<class>``, ``<split>/overlap_acc_worst_group``).
- Splits: the file's ``split`` column (WILDS' official split).
"""

from __future__ import annotations

import hashlib
import re
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from robustml.atomic import atomic_path
from robustml.data.checks import check_columns, read_csv_rows
from robustml.data.contract import DataSplits
from robustml.data.missing import missing_data_error
from robustml.metrics import OVERLAP_EXTRA, OVERLAP_NAMES
from robustml.text.splits import text_splits
from robustml.validation import check_bool

FILE = "all_data_with_identities.csv"
FOLDER = "civilcomments_v1.0"  # the folder WILDS unpacks its archive into
URL = "https://worksheets.codalab.org/rest/bundles/0x8cd3de0634154aeaad2ee6eb96723c6e/contents/blob/"
# WILDS (wilds/datasets/civilcomments_dataset.py, version 1.0) publishes the archive's size and no
# checksum: the size is checked, and md5= checks a checksum the user trusts.
ARCHIVE_SIZE = 90_644_480
IDENTITIES = ("male", "female", "LGBTQ", "christian", "muslim", "other_religions", "black", "white")
ANY_IDENTITY = "any_identity"
FILE_ANY = "identity_any"  # the file's column: any of WILDS' 24 identity columns (JTT's attribute)
CLASS_NAMES = ("non_toxic", "toxic")
SPLITS = {"train": 0, "val": 1, "test": 2}
COLUMNS = ("comment_text", "split", "toxicity", *IDENTITIES)
MD5_PATTERN = re.compile(r"[0-9a-fA-F]{32}")
LAYOUT = (f"WILDS' CivilComments v1.0 archive ({URL}, a .tar.gz) unpacks to {FOLDER}/{FILE}: a CSV "
          "with an unnamed index column, then id, comment_text, split (train/val/test), toxicity "
          f"and the identity columns ({', '.join(IDENTITIES)}, and more); put that folder under the "
          "data root.")


def find_civilcomments(root: str | Path) -> Path:
    """Return the path of ``all_data_with_identities.csv`` under ``root``."""
    root = Path(root)
    for folder in (root / FOLDER, root / "civilcomments" / FOLDER, root / "civilcomments", root):
        if (folder / FILE).is_file():
            return folder / FILE
    raise missing_data_error("CivilComments", root, [f"{FOLDER}/{FILE}"], layout=LAYOUT,
                             download_hint="When online, pass download=true to download and unpack it.")


def download_civilcomments(root: str | Path, *, md5: str | None = None) -> Path:
    """Download WILDS' archive into ``root/civilcomments_v1.0/``, check it, unpack it; return the CSV.

    The archive is written atomically (whole or absent), its size checked against the one WILDS
    publishes (and its MD5 against ``md5`` when given), then unpacked beside it.
    """
    folder = Path(root) / FOLDER
    archive = folder / "archive.tar.gz"
    if not archive.is_file():
        with atomic_path(archive) as tmp:
            urllib.request.urlretrieve(URL, tmp)  # noqa: S310 (a fixed https URL)
    size = archive.stat().st_size
    if size != ARCHIVE_SIZE:
        raise ValueError(f"{archive} has {size:,} bytes, expected {ARCHIVE_SIZE:,} (WILDS' published "
                         "size of CivilComments v1.0); delete it and download again")
    if md5 is not None:
        digest = hashlib.md5(archive.read_bytes()).hexdigest()
        if digest != md5.lower():
            raise ValueError(f"{archive} has MD5 {digest}, expected md5={md5}; delete it and download again")
    with tarfile.open(archive) as handle:
        handle.extractall(folder, filter="data")
    return find_civilcomments(root)


def civilcomments_splits(root: str | Path, *, tokenizer: str = "bert-base-uncased", max_length: int = 300,
                         attribute: str = ANY_IDENTITY, cache_dir: str | None = "text_cache",
                         empty_text: str = "keep", download: bool = False,
                         md5: str | None = None, counterfactual_lexicon: str | None = None) -> DataSplits:
    """Return CivilComments-WILDS' official splits, tokenized (in memory).

    Args:
        root: Data root holding ``civilcomments_v1.0/all_data_with_identities.csv``.
        tokenizer: Local folder, ``package:<module>`` or Hub name of the tokenizer.
        max_length: Tokens per comment (300: WILDS' setting for BERT on CivilComments).
        attribute: The training groups' attribute: ``any_identity`` (any of the eight, DFR's
            coarse groups), ``identity_any`` (the file's column over all 24 identities, JTT's) or
            one of the eight identities.
        cache_dir: Folder of the token cache (relative to the working directory), or ``None``.
        empty_text: ``keep`` an empty comment as ``""`` or ``drop`` it (counted either way).
        download: Download WILDS' archive first when the CSV is absent (needs internet).
        md5: Optional MD5 (32 hex digits) the downloaded archive must have.
        counterfactual_lexicon: Word pairs swapped in the comments for counterfactual
            augmentation and the stress test (``identity``: CivilComments' identity terms,
            ``gender``, or a file of pairs); ``None``: none (see :func:`~robustml.text.splits.text_splits`).

    Raises:
        FileNotFoundError: The CSV is missing (the expected layout is named).
        ValueError: A column is missing, a split name or a score is invalid, or an option is out
            of range (the setting, expected and received values are named).
    """
    download = check_bool("download", download)
    if attribute not in (ANY_IDENTITY, FILE_ANY, *IDENTITIES):
        raise ValueError(f"attribute must be {ANY_IDENTITY!r} (any of the eight identities, DFR's coarse "
                         f"groups), {FILE_ANY!r} (the file's column over 24 identities, JTT's) or one "
                         f"identity of {list(IDENTITIES)}, got {attribute!r}")
    if md5 is not None and not (isinstance(md5, str) and MD5_PATTERN.fullmatch(md5)):
        raise ValueError(f"md5 must be None or 32 hexadecimal digits, got {md5!r}")
    try:
        csv = find_civilcomments(root)
    except FileNotFoundError:
        if not download:
            raise
        csv = download_civilcomments(root, md5=md5)
    frame = read_csv_rows(csv, header=f"with the columns {', '.join(COLUMNS)}", row="comment",
                          index_col=0, keep_default_na=False, na_values=[""])
    check_columns(list(frame.columns), [*COLUMNS, *([FILE_ANY] if attribute == FILE_ANY else [])],
                  source=str(csv))
    unknown = sorted(set(frame["split"].astype(str)) - set(SPLITS))
    if unknown:
        raise ValueError(f"{csv}, column 'split': values must be {sorted(SPLITS)}, got {unknown[:5]}")
    scores = {}
    for column in ("toxicity", *IDENTITIES, *([FILE_ANY] if attribute == FILE_ANY else [])):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(np.isnan(values) & frame[column].notna().to_numpy())
        if len(bad):
            raise ValueError(f"{csv}, column {column!r}: expected scores in [0, 1], got "
                             f"{frame[column].iloc[bad[0]]!r} at data row {int(bad[0])}")
        if column == "toxicity" and np.isnan(values).any():
            raise ValueError(f"{csv}, column 'toxicity': {int(np.isnan(values).sum())} empty value(s), "
                             f"first at data row {int(np.flatnonzero(np.isnan(values))[0])}; every "
                             "comment needs a toxicity score")
        scores[column] = values
    y = (scores["toxicity"] >= 0.5).astype(np.int64)
    mentions = np.stack([scores[name] >= 0.5 for name in IDENTITIES], axis=1)  # NaN: not mentioned
    unannotated = int(np.isnan(np.stack([scores[name] for name in IDENTITIES], axis=1)).all(axis=1).sum())
    if attribute == ANY_IDENTITY:
        attr = mentions.any(axis=1)
    elif attribute == FILE_ANY:
        attr = scores[FILE_ANY] >= 0.5
    else:
        attr = mentions[:, IDENTITIES.index(attribute)]
    attr = attr.astype(np.int64)
    attr_key, attr_names = (("identity", ("none", "any")) if attribute in (ANY_IDENTITY, FILE_ANY)
                            else (attribute, ("no", "yes")))
    split = frame["split"].astype(str).map(SPLITS).to_numpy(dtype=np.int64)
    which = {ANY_IDENTITY: f" for any of {', '.join(IDENTITIES)}",
             FILE_ANY: " in the file's identity_any column, over all 24 identity columns"}.get(attribute, "")
    description = (
        f"CivilComments-WILDS from {csv} ({len(frame):,} comments): label toxicity >= 0.5; training "
        f"groups label x {attribute} (an identity score >= 0.5{which}); "
        f"evaluation also over WILDS' 16 overlapping groups (each of the 8 identities x label, "
        f"metrics overlap_*); {unannotated:,} comments have no identity annotation (NaN scores, "
        "counted as not mentioned); the official splits of the column 'split'.")
    return text_splits(
        frame, text_columns=("comment_text",), y=y, attr=attr, split=split, num_classes=2,
        class_names=CLASS_NAMES, attr_names=attr_names, attr_key=attr_key, tokenizer=tokenizer,
        max_length=max_length, cache_dir=cache_dir, empty_text=empty_text, name="civilcomments",
        description=description, source=str(csv), extras={OVERLAP_EXTRA: mentions},
        info={OVERLAP_NAMES: IDENTITIES},
        split_hint="The published file has comments of every split (train, val, test).",
        counterfactual_lexicon=counterfactual_lexicon)
