"""`FileSyncer`: groups of real files fdatasynced on worker threads."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pyrivet._util.file_sync import FileSyncer


async def test_a_group_of_files_is_synced_and_the_workers_stop(tmp_path: Path) -> None:
    syncer = FileSyncer(3)
    fds = []
    try:
        for n in range(5):
            fd = os.open(tmp_path / f"f{n}", os.O_RDWR | os.O_CREAT)
            os.write(fd, b"x" * 100)
            fds.append(fd)
        assert await syncer.sync([(str(n), fd, None) for n, fd in enumerate(fds)]) == {}
        assert await syncer.sync([("0", fds[0], None)]) == {}
        assert await syncer.sync([]) == {}
        assert len(syncer._threads) == 3  # no more than asked for, reused
    finally:
        syncer.close()
        for fd in fds:
            os.close(fd)
    assert syncer._threads == []


async def test_failures_are_reported_by_key_and_a_closed_descriptor_is_not_one() -> None:
    syncer = FileSyncer(2)
    read, write = os.pipe()  # fdatasync of a pipe: EINVAL
    closed_r, closed_w = os.pipe()
    os.close(closed_r)
    os.close(closed_w)
    try:
        failed = await syncer.sync([("r", read, None), ("w", write, None)])
        assert sorted(failed) == ["r", "w"]
        assert all(isinstance(exc, OSError) for exc in failed.values())
        assert await syncer.sync([("c", closed_r, None)]) == {}  # EBADF: its owner closed it
    finally:
        syncer.close()
        os.close(read)
        os.close(write)


async def test_each_job_runs_its_write_on_the_worker_before_the_sync(tmp_path: Path) -> None:
    syncer = FileSyncer(2)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    ran: list[tuple[str, bool]] = []

    def write() -> None:
        os.write(fd, b"committed")
        ran.append(("write", threading.current_thread() is threading.main_thread()))

    def refuse() -> None:
        ran.append(("refuse", False))
        raise ValueError("the commit failed")

    read, write_end = os.pipe()
    try:
        # The pipe would fail its sync, but its write fails first: that error is kept.
        failed = await syncer.sync([("ok", fd, write), ("bad", read, refuse)])
        assert list(failed) == ["bad"] and isinstance(failed["bad"], ValueError)
        assert sorted(ran) == [("refuse", False), ("write", False)]
        assert os.pread(fd, 100, 0) == b"committed"
    finally:
        syncer.close()
        for n in (fd, read, write_end):
            os.close(n)


def test_at_least_one_thread() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FileSyncer(0)
