"""Collector processes (``touchpoints serve --collectors N``): their logs, and how the process
that owns the warehouse takes them in.

A collector process validates each request as the server's own collector does (the same
:func:`touchpoints.collect.ingest.split_request`), appends the accepted rows to its own
write-ahead log and answers; it never opens the database. Its log lives in
``wal/collectors/<n>/``, in the write-ahead log's format (:func:`log_lines`): the current
segment is ``segment-<number>.log``; every ``flush_interval_ms`` the collector closes it
(fsynced first when ``wal_fsync`` is on) and renames it ``.ready``. Refused events and bodies,
which the server would hold in the quarantine, go to ``held-<number>.ready`` files: JSON lines
of the quarantine's rows, made by the same functions.

The owner's writer thread (:class:`touchpoints.collect.writer.BufferedWriter`) loads every
``.ready`` file after its own batch (:meth:`Spools.load`): the rows through the event store
(deduplication by messageId, the suppression of erased identifiers), the identity map caught
up after them, then the file deleted. A collector process killed in the middle of a write
leaves a ``.log`` segment: it is read when the collector of that number starts again (its
torn last line, never acknowledged, skipped), and by whatever opens the data directory next
(:meth:`Spools.recover`), as the server's own log is. The order of one collector's files is
kept; two collectors' files are independent, as two requests to two servers would be.

A collector process answers 429 when the owner is behind: when the rows it has handed over
and the owner has not loaded yet pass ``max_pending_events`` divided among the collectors.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from touchpoints.collect.ingest import Rejected
from touchpoints.collect.quarantine import held_body_row, held_event_rows
from touchpoints.collect.store import HeldRow
from touchpoints.collect.writer import WriteAheadLog, read_segment
from touchpoints.events import EventRow, Problem, any_named
from touchpoints.followed import Followed
from touchpoints.warehouse import EventStore

log = logging.getLogger("touchpoints.collectors")

SPOOL_DIR = "collectors"
KEYS_FILE = "keys.json"
WATCHED_FILE = "watched.json"  # the event names triggers fire on (see WatchedNames)
_SEGMENT = "segment-"
_HELD = "held-"
_LOG = ".log"
_READY = ".ready"
_TMP = ".tmp"
# Rows of consecutive segments appended in one transaction at most. Each append is a commit
# of DuckDB's own log, 4 ms here whatever its size: segments of 200 rows loaded one by one
# cost the owner 38 µs an event, of 2,000 rows 24 µs (2026-12-05). The identity map takes
# up to this many rows of an append as they are, without reading them back (its _CHUNK).
_LOAD_ROWS = 50_000


def spool_root(wal_dir: Path) -> Path:
    """Where collector processes keep their logs (and the keys they verify)."""
    return wal_dir / SPOOL_DIR


def collector_dir(wal_dir: Path, number: int) -> Path:
    return spool_root(wal_dir) / f"{number:03d}"


def write_keys(wal_dir: Path, snapshot: bytes) -> None:
    """Replace the keys file collector processes verify against (only hashes; readable by
    the owner only)."""
    _replace(spool_root(wal_dir) / KEYS_FILE, snapshot)


def _replace(path: Path, data: bytes) -> None:
    """``path`` replaced whole by ``data`` (readable by the owner only): a reader sees the
    old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def write_watched(wal_dir: Path, names: Iterable[str]) -> None:
    """Replace the file of event names that triggers fire on, which collector processes
    read to hand such events over at once (:class:`WatchedNames`)."""
    _replace(spool_root(wal_dir) / WATCHED_FILE, orjson.dumps(sorted(names)))


class WatchedNames:
    """The event names triggers fire on, for a collector process: read from the file the
    owner writes (:func:`write_watched`) when it changes, looked at most once a
    ``recheck_seconds``. :meth:`urgent` is the process's writer's test."""

    def __init__(self, path: Path, recheck_seconds: float = 1.0) -> None:
        self._file = Followed(path, recheck_seconds)
        self.names: frozenset[str] = frozenset()
        self.refresh()

    def refresh(self) -> None:
        """Read the file again if it changed since it was last read (gone: no names)."""
        found = self._file.fresh(
            lambda names: frozenset(str(n) for n in names) if isinstance(names, list) else None
        )
        if self._file.missing:
            self.names = frozenset()
        elif found is not None:
            self.names = found

    def urgent(self, rows: Sequence[EventRow]) -> bool:
        """Whether a trigger fires on one of ``rows`` (the writer then hands them over at
        once, not at its next interval)."""
        if self._file.due():
            self.refresh()
        return any_named(rows, self.names)


def _number(path: Path) -> int:
    digits = path.name.split("-", 1)[1].split(".", 1)[0]
    return int(digits) if digits.isdigit() else 0


def _ordered(paths: Iterable[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: (_number(p), p.name))


def release_leftovers(directory: Path) -> int:
    """Mark a stopped collector's open segment as ready to load (its torn last line, if
    any, is skipped when read); return the number of the last segment found."""
    last = 0
    for path in directory.glob(f"{_SEGMENT}*{_LOG}"):
        last = max(last, _number(path))
        path.rename(path.with_suffix(_READY))
    for path in directory.glob(f"{_SEGMENT}*{_READY}"):
        last = max(last, _number(path))
    return last


class SpoolWriter(WriteAheadLog):
    """A collector process's log: the server's write-ahead log (the same appends before the
    answer, the same fsync groups), whose segments are handed to the owner as ``.ready``
    files instead of being written to a warehouse."""

    def __init__(self, directory: Path, **options: Any) -> None:
        super().__init__(directory, **options)
        self._handed: deque[tuple[Path, int]] = deque()  # ready files the owner may not have

    def start(self) -> None:
        self._wal_dir.mkdir(parents=True, exist_ok=True)
        self._segment_number = release_leftovers(self._wal_dir)
        super().start()

    def stop(self) -> None:
        super().stop()
        # Nothing more comes: what the last segment holds is the owner's to load.
        release_leftovers(self._wal_dir)
        for path in self._wal_dir.glob(f"{_SEGMENT}*{_READY}"):
            if path.stat().st_size == 0:
                path.unlink(missing_ok=True)

    def _write_pending_now(self) -> None:
        with self._lock:
            handed = len(self._pending)
            if handed:
                self._pending = []
                old_segment = self._current_segment_path()
                self._fsync_fd_locked()
                os.close(self._fd)
                self._open_segment()
        if handed:
            ready = old_segment.with_suffix(_READY)
            old_segment.rename(ready)
            self._handed.append((ready, handed))
        while self._handed and not self._handed[0][0].exists():
            self._handed.popleft()
        # Still the owner's to load: counted against max_pending_events by submit().
        self._in_flight = sum(count for _, count in self._handed)


class HeldSpool:
    """A collector process's quarantine: refused events and bodies written as the
    quarantine's rows for the owner to hold (:class:`touchpoints.collect.quarantine.Quarantine`
    makes the same rows)."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._count = 0

    def hold_events(
        self,
        rejected: Sequence[Rejected],
        *,
        source: str,
        route: str,
        envelope: dict[str, Any],
        received_at: datetime,
    ) -> list[int]:
        self._write(held_event_rows(rejected, source, route, envelope, received_at))
        return []

    def hold_body(
        self,
        body: bytes,
        problems: Sequence[Problem],
        *,
        source: str,
        route: str,
        received_at: datetime,
    ) -> int | None:
        self._write([held_body_row(body, problems, source, route, received_at)])
        return None

    def _write(self, rows: list[HeldRow]) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._count += 1
        name = f"{_HELD}{time.time_ns():020d}{self._count:06d}"
        path = self._dir / f"{name}{_TMP}"
        lines = b"".join(
            orjson.dumps([row.received_at.isoformat(), *row[1:]]) + b"\n" for row in rows
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, lines)
        finally:
            os.close(fd)
        path.rename(path.with_suffix(_READY))


def read_held(path: Path) -> list[HeldRow]:
    rows = []
    for line in path.read_bytes().splitlines():
        if line:
            values = orjson.loads(line)
            rows.append(HeldRow(datetime.fromisoformat(values[0]), *values[1:]))
    return rows


class Spools:
    """The owner's side: loads what collector processes handed over."""

    def __init__(
        self,
        wal_dir: Path,
        store: EventStore,
        hold: Callable[[list[HeldRow]], object],
    ) -> None:
        self.root = spool_root(wal_dir)
        self._store = store
        self._hold = hold

    def _files(self, suffixes: tuple[str, ...]) -> list[Path]:
        if not self.root.is_dir():
            return []
        found: list[Path] = []
        for directory in sorted(p for p in self.root.iterdir() if p.is_dir()):
            found.extend(
                _ordered(p for p in directory.iterdir() if p.suffix in suffixes and p.is_file())
            )
        return found

    def ready(self) -> bool:
        """Whether a collector process has handed a file over that is not loaded yet."""
        return bool(self._files((_READY,)))

    def load(self, after_write: Callable[[], object] | None = None) -> int:
        """Load every ready file (rows first, then refusals); return the rows read."""
        return self._load(self._files((_READY,)), after_write)

    def recover(self) -> int:
        """Load everything collector processes left, their open segments too (none runs:
        whoever opens the data directory calls this before a server starts them). A held
        file a killed process left half-written (``.tmp``) is removed."""
        for path in self._files((_TMP,)):
            path.unlink()
        return self._load(self._files((_READY, _LOG)), None)

    def _load(self, files: list[Path], after_write: Callable[[], object] | None) -> int:
        """Load ``files`` in order: consecutive segments' rows in one append (up to
        :data:`_LOAD_ROWS`), each followed by ``after_write``; a held file as it comes."""
        total = 0
        rows: list[EventRow] = []
        taken: list[Path] = []

        def append() -> None:
            nonlocal total, rows, taken
            if rows:
                self._store.append(rows)
                total += len(rows)
            for taken_path in taken:
                taken_path.unlink()
            if rows and after_write is not None:
                after_write()
            rows, taken = [], []

        for path in files:
            if path.name.startswith(_SEGMENT):
                try:
                    segment = read_segment(path)
                except Exception:
                    append()  # what came before a corrupt segment is loaded all the same
                    raise
                if rows and len(rows) + len(segment) > _LOAD_ROWS:
                    append()
                rows.extend(segment)
                taken.append(path)
            elif path.name.startswith(_HELD):
                self._hold(read_held(path))
                path.unlink()
        append()
        return total

    def pending(self) -> int:
        """Rows handed over and not loaded yet (the open segments included)."""
        count = 0
        for path in self._files((_READY, _LOG)):
            if path.name.startswith(_SEGMENT):
                try:
                    count += path.read_bytes().count(b"\n")
                except FileNotFoundError:
                    continue  # loaded meanwhile
        return count
