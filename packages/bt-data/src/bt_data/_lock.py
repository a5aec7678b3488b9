"""A small inter-process file lock that serializes DuckDB writers.

DuckDB lets only one process open a database file for writing. Two processes that import or
backfill at the same time would otherwise fail with DuckDB's "could not set lock" error, so every
store operation first takes this lock on a sidecar file ``<db>.lock``: shared for reads,
exclusive for writes (on Windows, where ``msvcrt`` has no shared mode, always exclusive).

A shared hold opens an existing lock file read-only (a shared ``flock`` needs no write access),
so a reader of a store it may not write still takes part in the locking. A shared hold that may
not create the missing lock file (``create=False``: a read-only directory), or cannot open it,
runs without the inter-process lock; that read is still safe because DuckDB itself holds an
OS lock on the database file while it is open (shared for a read-only connection, exclusive for
a writer), so a writer and the reader can never have the file open together; the one arriving
second fails to open and the store retries until its timeout.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from .errors import StoreLockedError

_POLL_SECONDS = 0.02


class FileLock:
    """Advisory lock on ``path`` that blocks (polling) up to ``timeout`` seconds."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        # One process-wide mutex per lock object: flock is per open file description, so two
        # threads of this process must not both think they own it.
        self._mutex = threading.RLock()

    @contextmanager
    def hold(self, exclusive: bool, *, create: bool = True) -> Iterator[None]:
        """Hold the lock (exclusive or shared) for the duration of the ``with`` block.

        ``create=False`` never creates the lock file; a shared hold then goes without the lock
        when the file is missing (see the module notes for why that read is still safe).

        Raises:
            StoreLockedError: if the lock was not obtained within ``timeout`` seconds.
            OSError: if an exclusive hold cannot open or create the lock file.
        """
        with self._mutex:
            handle = self._open(exclusive, create)
            if handle is None:
                yield
                return
            try:
                self._acquire(handle, exclusive)
                try:
                    yield
                finally:
                    self._release(handle)
            finally:
                handle.close()

    def _open(self, exclusive: bool, create: bool) -> IO[bytes] | None:
        if exclusive:
            # Read-write even when the file exists: on NFS, Linux emulates flock with fcntl
            # locks, and an exclusive one needs a descriptor open for writing.
            return open(self.path, "a+b")  # noqa: SIM115 - closed by hold()
        try:
            return open(self.path, "rb")  # noqa: SIM115 - closed by hold()
        except FileNotFoundError:
            pass
        except OSError:
            return None
        if not create:
            return None
        try:
            return open(self.path, "a+b")  # noqa: SIM115 - closed by hold()
        except OSError:
            return None

    def _acquire(self, handle: IO[bytes], exclusive: bool) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            if _try_lock(handle, exclusive):
                return
            if time.monotonic() >= deadline:
                raise StoreLockedError(
                    f"could not lock {self.path!r} within {self.timeout:.1f} s: "
                    "another process is writing to this store"
                )
            time.sleep(_POLL_SECONDS)

    @staticmethod
    def _release(handle: IO[bytes]) -> None:
        _unlock(handle)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(handle: IO[bytes], exclusive: bool) -> bool:
        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        handle.seek(0)
        # Unlocking a byte we no longer hold raises; the handle is closed right after anyway.
        with contextlib.suppress(OSError):
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(handle: IO[bytes], exclusive: bool) -> bool:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        try:
            fcntl.flock(handle.fileno(), mode | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def lock_path_for(db_path: str) -> str:
    """The sidecar lock file of a database file."""
    return os.fspath(db_path) + ".lock"
