"""The one message for a data set that is not where ``root`` says: what is missing and what to pass."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def missing_data_error(dataset: str, root: str | Path, missing: Sequence[str], *, layout: str,
                       download_hint: str | None = None) -> FileNotFoundError:
    """Return the ``FileNotFoundError`` for ``dataset`` files absent under ``root``.

    The message names the missing files, the expected layout, and the folder to pass as ``root``
    (the configs read ``data.root``, which defaults to the ``ROBUSTML_DATA`` environment variable).

    Args:
        dataset: Name for the message, e.g. ``"MNIST"``.
        root: The folder that was searched (the ``root`` argument, or a folder under it).
        missing: The missing files or folders, relative to ``root``.
        layout: One or more sentences on the expected layout and where the files come from.
        download_hint: A sentence on downloading when online (``download=True``), if possible.
    """
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    text = (f"{dataset} not found under {Path(root)}: missing {shown}. {layout.rstrip()} Pass "
            f"root=<dir>, the folder that holds it (the configs' default is ROBUSTML_DATA=<dir> "
            f"from the environment).")
    return FileNotFoundError(text + (f" {download_hint}" if download_hint else ""))
