"""Atomic file writes: a reader sees the old file or the new one, never half of one.

One recipe for every writer (images, weights, checkpoints, logs, batch outputs, videos, exports): write
a temporary file in the destination's own folder (a rename is atomic only within one file system),
fsync it, give it the permissions the destination would have, rename it over the destination, then
fsync the folder so that the rename itself survives a power cut. On an error the temporary file is
removed and the destination is left as it was.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, mode: int | None = None) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to (by name: for writers that open files themselves).

    It keeps ``path``'s extension (writers that pick the format from the name), and after the block it
    is fsynced and renamed onto ``path``. ``mode``: the file's permissions; by default an existing
    file's, else what the umask gives a new file.
    """
    path = Path(os.fspath(path))
    if mode is None:
        mode = stat.S_IMODE(os.stat(path).st_mode) if path.exists() else new_file_mode()
    fd, name = tempfile.mkstemp(prefix=f".{path.stem[:40]}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync_file(tmp)
        with contextlib.suppress(OSError):
            os.chmod(tmp, mode)  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", perms: int | None = None) -> Iterator:
    """``open(path, mode)`` for writing, atomically (see :func:`atomic_path`)."""
    with atomic_path(path, perms) as tmp, open(tmp, mode) as fh:
        yield fh
        fh.flush()


def write_bytes(path: str | os.PathLike, data: bytes, perms: int | None = None) -> None:
    with atomic_open(path, "wb", perms) as fh:
        fh.write(data)


def write_text(path: str | os.PathLike, text: str, perms: int | None = None) -> None:
    with atomic_open(path, "w", perms) as fh:
        fh.write(text)


def new_file_mode() -> int:
    """0o666 minus the umask, read without os.umask() (which would race with other threads)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    return 0o644


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
