"""A file another process replaces whole (written under a temporary name, then renamed),
followed by a process that reads it: the collector processes' keys and the event names
triggers fire on, which the server writes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson

T = TypeVar("T")

Stamp = tuple[int, int, int]  # inode, modification time (ns), size: a replaced file differs


class Followed:
    """``path``, looked at (one ``stat``) at most once a ``recheck_seconds``
    (:meth:`due`); its JSON is given to the reader when it differs from what was last
    parsed, so a reader parses it only after a change (:meth:`fresh`)."""

    def __init__(self, path: Path, recheck_seconds: float = 1.0) -> None:
        self.path = path
        self._recheck = recheck_seconds
        self._checked = 0.0
        self._taken: Stamp | None = None
        self.missing = True

    def due(self) -> bool:
        return time.monotonic() - self._checked >= self._recheck

    def fresh(self, parse: Callable[[Any], T]) -> T | None:
        """``parse`` of its JSON if it changed since it was last parsed; None if it did not,
        or cannot be read or parsed now (read at the next look), or is not there (then
        :attr:`missing`)."""
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
            value = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None  # replaced or removed meanwhile: read at the next look
        found = parse(value)
        self._taken = stamp
        return found
