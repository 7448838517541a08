"""A file another process replaces whole (written under a temporary name, then renamed),
followed by a process that reads it: the collector processes' keys and the event names
triggers fire on, which the server writes."""

from __future__ import annotations

import time
from pathlib import Path

Stamp = tuple[int, int, int]  # inode, modification time (ns), size: a replaced file differs


class Followed:
    """``path``, looked at (one ``stat``) at most once a ``recheck_seconds``
    (:meth:`due`); :meth:`read` gives its bytes when it differs from what was last
    :meth:`taken`, so a reader parses it only after a change."""

    def __init__(self, path: Path, recheck_seconds: float = 1.0) -> None:
        self.path = path
        self._recheck = recheck_seconds
        self._checked = 0.0
        self._taken: Stamp | None = None
        self.missing = True

    def due(self) -> bool:
        return time.monotonic() - self._checked >= self._recheck

    def read(self) -> tuple[bytes, Stamp] | None:
        """(its bytes, its stamp) if it changed since the stamp last taken; None if it did
        not, or cannot be read, or is not there (then :attr:`missing`)."""
        self._checked = time.monotonic()
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self.missing, self._taken = True, None
            return None
        self.missing = False
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp == self._taken:
            return None
        try:
            return self.path.read_bytes(), stamp
        except OSError:
            return None  # replaced or removed meanwhile: read at the next look

    def taken(self, stamp: Stamp) -> None:
        """What :meth:`read` gave was used: read it again only after the next change."""
        self._taken = stamp
