# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one file lock: an exclusive ``flock`` with a timeout and a one-sentence refusal.

The kernel releases a ``flock`` when its holder dies, so a crashed run never leaves a stale
lock behind.  Modelled on community.general's ``module_utils/_filelock.py`` (a context
manager, a deadline, one exception class), without its ``tmpdir`` fallback: the callers here
always know their lock path.

Standard library only: this file runs on targets too.
"""

from __future__ import annotations

import fcntl
import os
import time

POLL_SECONDS = 0.05


class LockBusy(Exception):
    """Someone else held the lock for longer than the timeout (the message is one sentence)."""


class FileLock:
    """``with FileLock(path, timeout, holder="another publish"):`` ... (exclusive).

    TIMEOUT ``None`` waits forever; ``0`` tries once.  The lock file is created empty (mode
    0600, parent directories DIR_MODE) and never written, so taking the lock changes no
    file's content.  ERROR is the exception class raised when the lock stays busy (the
    caller's own error class, so its callers keep catching what they caught before).
    """

    def __init__(self, path: str, timeout: float | None = 600.0, holder: str = "another run",
                 error: type = LockBusy, dir_mode: int = 0o750):
        self.path = path
        self.timeout = timeout
        self.holder = holder
        self.error = error
        self.dir_mode = dir_mode
        self.fd: int | None = None

    def acquire(self) -> "FileLock":
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), mode=self.dir_mode, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (BlockingIOError, PermissionError):
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(fd)
                    raise self.error(f"{self.holder} held the lock {self.path} for more than "
                                     f"{self.timeout:g} seconds; wait for it to finish.") from None
                time.sleep(POLL_SECONDS)
            except BaseException:
                os.close(fd)
                raise
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def held_by_other(path: str) -> bool:
    """True when some live process holds the lock at PATH now (a missing file: nobody)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False
