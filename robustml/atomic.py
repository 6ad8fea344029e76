"""The one atomic file writer of robustml: a file is either whole (old or new) or absent.

Every whole-file output of the package (``metrics.json``, ``report.md``, plots, checkpoints,
feature and out-of-fold caches, CSVs) goes through :func:`atomic_path`: the content is written to
a hidden temporary file in the target folder, flushed to disk, then moved onto the target with
``os.replace`` (atomic on POSIX and Windows). A process killed mid-write (even by ``SIGKILL``)
leaves the target as it was; only a hidden ``.<name>.<random>.tmp`` file may stay behind.

Permissions are those of a file created by ``open()``: ``0o666`` minus the process umask (``0644``
under the usual umask ``022``). ``tempfile.mkstemp`` would leave ``0600``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


def _create_temporary(folder: Path, name: str) -> Path:
    """Create an empty, new hidden file next to ``name`` with ``0o666 & ~umask``; return its path."""
    while True:
        tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the kernel applies umask
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


def _fsync(path: Path, *, directory: bool = False) -> None:
    """Flush ``path`` to disk (a folder: best effort, not every platform can open one)."""
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` if the block succeeds.

    The block writes the whole content to the yielded path (by name, or by opening it). The
    parent folder is created if needed. On success the temporary file is flushed to disk and
    renamed onto ``path``; on an exception it is removed and ``path`` is left as it was.

    Args:
        path: The destination file.

    Yields:
        The temporary file's path (empty, permissions ``0o666 & ~umask``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temporary(path.parent, path.name)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync(path.parent, directory=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8, atomically (the file is whole or absent)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
