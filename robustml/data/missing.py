"""The one message for a data set that is not where the config says: what is missing and what to type."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def missing_data_error(dataset: str, root: str | Path, missing: Sequence[str], *, layout: str,
                       download_hint: str | None = None) -> FileNotFoundError:
    """Return the ``FileNotFoundError`` for ``dataset`` files absent under ``root``.

    The message names the missing files, the expected layout, and the two ways to point robustml at
    the data: ``data.root=<dir>`` on the command line or the ``ROBUSTML_DATA`` environment variable.

    Args:
        dataset: Name for the message, e.g. ``"MNIST"``.
        root: The folder that was searched (``data.root``, or a folder under it).
        missing: The missing files or folders, relative to ``root``.
        layout: One or more sentences on the expected layout and where the files come from.
        download_hint: A sentence on downloading when online (``data.download=true``), if possible.
    """
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    text = (f"{dataset} not found under {Path(root)}: missing {shown}. {layout.rstrip()} Point "
            f"robustml at the folder that holds it with data.root=<dir> on the command line or "
            f"ROBUSTML_DATA=<dir> in the environment.")
    return FileNotFoundError(text + (f" {download_hint}" if download_hint else ""))
