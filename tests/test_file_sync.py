"""`FileSyncer`: groups of real files fdatasynced on worker threads."""

from __future__ import annotations

import os
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
        await syncer.sync(fds)
        await syncer.sync(fds[:1])
        await syncer.sync([])
        assert len(syncer._threads) == 3  # no more than asked for, reused
    finally:
        syncer.close()
        for fd in fds:
            os.close(fd)
    assert syncer._threads == []


async def test_a_failed_sync_fails_the_group_and_a_closed_descriptor_does_not() -> None:
    syncer = FileSyncer(2)
    read, write = os.pipe()  # fdatasync of a pipe: EINVAL
    closed_r, closed_w = os.pipe()
    os.close(closed_r)
    os.close(closed_w)
    try:
        with pytest.raises(OSError):
            await syncer.sync([read, write])
        await syncer.sync([closed_r])  # EBADF: its owner closed it: no error
    finally:
        syncer.close()
        os.close(read)
        os.close(write)


def test_at_least_one_thread() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FileSyncer(0)
