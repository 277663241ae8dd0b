"""One writer per data home: an exclusive, advisory file lock released when the process dies."""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ddsearch.errors import BusyError, ReadOnlyHomeError

_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


class LockedError(BusyError):
    """Another writer holds the data home."""


@contextmanager
def writer_lock(home: Path) -> Iterator[None]:
    """Hold the home's writer lock; a home this process cannot write to is told as such."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(home / "ingest.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        if e.errno not in _READ_ONLY:
            raise
        raise ReadOnlyHomeError(
            f"the data home {home} is read-only ({e.strerror})",
            "queries work as it is; to change the index, give a --home this user can write to",
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise LockedError(f"another ingest is writing to {home} (pid {holder})",
                              "wait for it to finish") from None  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
