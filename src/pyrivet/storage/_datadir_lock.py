"""The exclusive lock on a data directory: one process at a time may open it.

`lock_dir` takes an ``flock`` on ``<data_dir>/LOCK`` and writes the holder's pid there,
so that a second opener's error can name it; closing the descriptor (`unlock_dir`, or
the process dying) releases the lock.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..errors import DataDirLockedError, StorageError

__all__ = ["LOCK_FILE", "lock_dir", "unlock_dir"]

LOCK_FILE = "LOCK"


def lock_dir(data_dir: Path) -> int:
    """Take the exclusive lock on ``data_dir/LOCK`` and write our pid into it.

    Raises:
        DataDirLockedError: another open file description (another process, or another
            driver in this one) holds the lock.
        StorageError: locking is not possible here.
    """
    try:
        import fcntl  # POSIX only; imported here so the package still imports elsewhere
    except ImportError as exc:
        raise StorageError("the SQLite driver needs fcntl.flock (a POSIX system)") from exc
    path = data_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(f"cannot open the lock file {path}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_pid(fd)
        os.close(fd)
        who = "another process" if holder is None else f"the process with pid {holder}"
        if holder == os.getpid():
            who = "another SQLiteDriver in this process"
        raise DataDirLockedError(
            f"the data directory {data_dir} is already in use by {who}; "
            "stop that process or pass a different data directory"
        ) from None
    except OSError as exc:
        os.close(fd)
        raise StorageError(f"cannot lock {path}: {exc}") from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None


def unlock_dir(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)  # closing the last descriptor releases the flock
