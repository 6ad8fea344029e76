"""The one message for a data set that is not where the config says: what is missing and what to type."""

from __future__ import annotations

from pathlib import Path


def missing_data_error(dataset: str, root: str | Path, missing: list[str], *, layout: str,
                       download_hint: str | None = None) -> FileNotFoundError:
    """Return the ``FileNotFoundError`` for ``dataset`` files absent under ``root``.

    The message names the missing files, the expected layout, and the two ways to point robustml at
    the data: ``data.root=<dir>`` on the command line or the ``ROBUSTML_DATA`` environment variable.

    Args:
        dataset: Name for the message, e.g. ``"MNIST"``.
        root: The data root that was searched (``data.root``).
        missing: The missing files or folders, relative to ``root``.
        layout: The expected layout under the root, e.g. ``"MNIST/raw/<the four idx files>"``.
        download_hint: How to download it when online (e.g. ``"data.download=true"``), if possible.
    """
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    text = (f"{dataset} not found under data.root={Path(root)}: missing {shown}. Expected layout "
            f"under the data root: {layout}. Point robustml at the folder that holds it with "
            f"data.root=<dir> on the command line or ROBUSTML_DATA=<dir> in the environment")
    if download_hint:
        text += f", or set {download_hint} to download it (needs internet)"
    return FileNotFoundError(text + ".")
