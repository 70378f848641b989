"""Lock files held against a second dove run (an output's work folder, a `--manifest`).

flock (msvcrt on Windows): the OS drops the lock when the file closes or the process ends, so a
killed run leaves no stale lock; the holder writes a line saying who it is, which a refused run
reads for its message. Each user words its own refusal (resume.Work, manifest.ManifestLock).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


class Busy(Exception):
    """Another live process holds the lock: `holder` is the line it wrote ("" when unreadable)."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


def lock_file(f: IO[str]) -> bool:
    """Take an exclusive lock on an open file without waiting; False when another process has it.
    The OS drops it when the file closes or the process ends, so a killed run leaves no stale lock."""
    f.seek(0)  # Windows locks bytes from the current position
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)  # the first byte stands for the file
        else:
            import fcntl

            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):  # POSIX, Windows
        return False
    except OSError as exc:  # a file system without locks (some network mounts): run unguarded
        log.warning("%s: cannot be locked (%s); do not start a second run on this output", f.name, exc.strerror)
    return True


def _holder(f: IO[str]) -> str:
    """The line the holder of `f`'s lock wrote ("" when it cannot be read)."""
    try:
        f.seek(0)
        return f.read().strip()
    except OSError:  # Windows: the locked byte cannot be read either
        return ""


def held_by(path: Path) -> str | None:
    """The holder's line of a lock another live process holds on `path` now ("" when unreadable), or
    None when nobody holds it (or there is no such file). Probed, not kept."""
    try:
        f = open(path)
    except OSError:
        return None
    with f:
        return None if lock_file(f) else _holder(f)


class HeldFile:
    """A lock file this process holds (made if need be) until release() or the end of the process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def current(self) -> bool:
        """Held, and the file at `path` is still the one locked (the run that held it before may have
        removed it between our open and our lock, or since)."""
        if self._file is None:
            return False
        try:
            return os.path.samestat(os.fstat(self._file.fileno()), os.stat(self.path))
        except FileNotFoundError:
            return False

    def hold(self) -> None:
        """Take the lock without waiting. Busy (with the holder's line) when another process has it;
        OSError when the file cannot be opened or made."""
        self.release()
        f = open(self.path, "a+")
        if not lock_file(f):
            with f:
                raise Busy(_holder(f))
        self._file = f

    def write_holder(self, line: str) -> None:
        """Say who holds the lock (a refused run's message names it). OSError: a full disk."""
        assert self._file is not None, "hold() first"
        self._file.truncate(0)
        self._file.write(f"{line}\n")
        self._file.flush()

    def release(self, *, remove: bool = False) -> None:
        """Let other processes take the lock (closing the file drops it); `remove`: delete the file
        first, while it is still held."""
        if self._file is None:
            return
        if remove:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        with contextlib.suppress(OSError):  # (the holder's line, unwritten on a full disk: not needed now)
            self._file.close()
        self._file = None
