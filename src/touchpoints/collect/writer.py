"""Durable, batched writes: a write-ahead log before the acknowledgement, Arrow batches after.

A collector appends each accepted request's rows to the current log segment (one ``write``
call; the operating system keeps it even if the process is killed) and to an in-memory buffer,
then answers. A writer thread takes the buffer every ``flush_interval_ms`` (or sooner when it
is large), switches to a new segment, inserts the batch into the warehouse in one statement
and deletes the old segment once that insert committed. At start, segments left by a killed
process are replayed; deduplication by messageId makes a replay of already-written events
harmless. With ``wal_fsync`` the log is also fsynced before acknowledging, grouped: requests
arriving within ``wal_fsync_interval_ms`` share one fsync.
"""

from __future__ import annotations

import asyncio
import logging
import math
import operator
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from touchpoints.events import COLUMNS, EventRow
from touchpoints.warehouse import EventStore, WarehouseError

if TYPE_CHECKING:
    from touchpoints.collect.spool import Spools

log = logging.getLogger("touchpoints.writer")

_SEGMENT_PREFIX = "segment-"
_SEGMENT_SUFFIX = ".log"


class Backpressure(Exception):
    """The writer is behind; the collector answers 429 with ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"writer is behind, retry in {retry_after} s")
        self.retry_after = retry_after


def _segments(wal_dir: Path) -> list[Path]:
    return sorted(wal_dir.glob(f"{_SEGMENT_PREFIX}*{_SEGMENT_SUFFIX}"))


# orjson refuses tuple subclasses, so each EventRow is copied to a plain tuple to be logged.
# row[:] makes that copy in one C call (60 ns a row here), where tuple(row) iterates (130 ns)
# and orjson's default=tuple hook costs more again.
_plain_tuple = operator.itemgetter(slice(None))
_event_row = tuple.__new__  # EventRow(*row) binds 19 arguments in Python: 0.5 µs a row


def log_lines(rows: Sequence[EventRow]) -> bytes:
    """Rows as a segment holds them: each a JSON array in ``COLUMNS`` order, one a line."""
    return _lines(map(_plain_tuple, rows))


def _lines(plain_rows: Iterable[tuple[Any, ...]]) -> bytes:
    return b"\n".join(map(orjson.dumps, plain_rows)) + b"\n"


def read_segment(path: Path) -> list[EventRow]:
    """Rows of one segment. A torn last line (the process died inside a write) was never
    acknowledged, so it is skipped; a bad line elsewhere is a real corruption and raises."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    rows: list[EventRow] = []
    for number, line in enumerate(lines):
        if not line:
            continue
        try:
            values = orjson.loads(line)
        except orjson.JSONDecodeError:
            if number == len(lines) - 1:
                log.warning("skipping a torn final line in %s", path.name)
                continue
            raise WarehouseError(
                f"write-ahead log {path} is corrupt at line {number + 1}"
            ) from None
        if not isinstance(values, list) or len(values) != len(COLUMNS):
            raise WarehouseError(
                f"write-ahead log {path} line {number + 1} is not a row of the "
                f"{len(COLUMNS)} event columns"
            )
        rows.append(EventRow._make(values))
    return rows


def replay_wal(wal_dir: Path, store: EventStore) -> int:
    """Write what a previous process acknowledged but did not commit; return the rows read."""
    total = 0
    for segment in _segments(wal_dir):
        rows = read_segment(segment)
        if rows:
            result = store.append(rows)
            log.info("replayed %s: %d events, %d new", segment.name, len(rows), result.inserted)
            total += len(rows)
        segment.unlink()
    return total


class WriteAheadLog:
    """The write-ahead log and the buffer: requests append before they are answered, one
    thread takes the buffer every ``flush_interval_ms`` and switches to a new segment.
    What becomes of a batch is the subclass's: :class:`BufferedWriter` writes it to the
    warehouse; a collector process's :class:`touchpoints.collect.spool.SpoolWriter` hands
    its segment to the process that owns the warehouse."""

    def __init__(
        self,
        wal_dir: Path,
        *,
        flush_interval_ms: int = 250,
        flush_max_events: int = 50_000,
        max_pending_events: int = 500_000,
        fsync: bool = False,
        fsync_interval_ms: float = 2.0,
        urgent: Callable[[Sequence[EventRow]], bool] | None = None,
    ) -> None:
        self._wal_dir = wal_dir
        # Whether rows are awaited (events a trigger fires on): they are written within
        # _HURRY of the last write's start rather than at the next interval.
        self._urgent = urgent
        self._hurry = False
        self._interval = flush_interval_ms / 1000
        self._flush_max = flush_max_events
        self._max_pending = max_pending_events
        self._fsync = fsync
        self._fsync_interval = fsync_interval_ms / 1000

        self._lock = threading.Lock()
        self._writing = threading.Lock()  # held while a batch goes to the warehouse
        self._wake = threading.Event()
        self._stopping = threading.Event()
        # Pending rows are the plain tuples the log was written from, not EventRows: the
        # garbage collector stops tracking a tuple of text and numbers, but never a tuple
        # subclass, and with 300,000 EventRows pending (a backlog; the limit is 500,000 by
        # default) each full collection took 0.33 s here instead of 0.04 s, with the whole
        # server waiting. They become EventRows again, one C call each, for the store.
        self._pending: list[tuple[Any, ...]] = []
        self._in_flight = 0
        self._segment_number = 0
        self._fd = -1
        self._written = 0  # bytes written to the log in total: a position for fsync waits
        self._synced = 0
        self._sync_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._sync_wake = threading.Event()
        self._rate = 100_000.0  # events/s, measured per batch, for Retry-After
        self.failures = 0
        self._thread: threading.Thread | None = None
        self._sync_thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._wal_dir.mkdir(parents=True, exist_ok=True)
        existing = _segments(self._wal_dir)
        if existing:
            raise RuntimeError("replay the write-ahead log before starting the writer")
        self._open_segment()
        self._thread = threading.Thread(target=self._run, name="touchpoints-writer", daemon=True)
        self._thread.start()
        if self._fsync:
            self._sync_thread = threading.Thread(
                target=self._sync_loop, name="touchpoints-fsync", daemon=True
            )
            self._sync_thread.start()

    def stop(self) -> None:
        """Write everything buffered, then close the log (the server calls this on SIGTERM)."""
        self._stopping.set()
        self._wake.set()
        self._sync_wake.set()
        if self._thread is not None:
            self._thread.join()
        if self._sync_thread is not None:
            self._sync_thread.join()
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        if not self._pending:
            for segment in _segments(self._wal_dir):
                if segment.stat().st_size == 0:
                    segment.unlink()

    @property
    def pending(self) -> int:
        return len(self._pending) + self._in_flight

    # -- the hot path ------------------------------------------------------------------------
    def submit(self, rows: Sequence[EventRow]) -> int:
        """Log and buffer rows; return the log position to wait for when fsync is on."""
        plain = list(map(_plain_tuple, rows))
        payload = _lines(plain)
        with self._lock:
            backlog = len(self._pending) + self._in_flight
            if backlog + len(rows) > self._max_pending:
                raise Backpressure(max(1, min(30, math.ceil(backlog / self._rate))))
            if self._stopping.is_set():
                raise Backpressure(5)
            os.write(self._fd, payload)
            self._written += len(payload)
            self._pending.extend(plain)
            position = self._written
            if len(self._pending) >= self._flush_max:
                self._wake.set()
        if self._urgent is not None and not self._hurry and self._urgent(rows):
            self._hurry = True
            self._wake.set()
        return position

    @property
    def fsync(self) -> bool:
        return self._fsync

    async def durable(self, position: int) -> None:
        """Return once the log is fsynced up to ``position`` (immediately when fsync is off)."""
        if not self._fsync or self._synced >= position:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._sync_waiters.append((position, future))
        self._sync_wake.set()
        await future

    def flush(self) -> None:
        """Write what is buffered now, in this thread (tests and the CLI use it)."""
        self._write_pending()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Write what is buffered now, then write nothing until the block ends (an erasure
        holds the warehouse still). Requests go on being logged and acknowledged meanwhile."""
        with self._writing:
            self._write_pending_now()
            yield

    # -- the writer thread -------------------------------------------------------------------
    def _run(self) -> None:
        # Every ``flush_interval_ms`` counted from the start of the last write, not its end:
        # under load a write of 1,700 events took 0.2-0.3 s, and waiting the whole interval
        # after it made each event wait a whole cycle more before the triggers saw it
        # (benchmarks/triggers.py, RESULTS.md).
        # Rows that are awaited wake it early, but not sooner than _HURRY after the last
        # write's start: a trigger on a frequent event makes batches of at least that long.
        started = time.monotonic()
        while not self._stopping.is_set():
            self._wait(started + self._interval)
            self._wake.clear()
            if self._hurry:
                self._stopping.wait(max(0.0, started + _HURRY - time.monotonic()))
                self._hurry = False
            started = time.monotonic()
            self._write_pending()
        self._write_pending()

    def _wait(self, until: float) -> None:
        """Until ``until`` (monotonic), or sooner when woken."""
        self._wake.wait(max(0.0, until - time.monotonic()))

    def _write_pending(self) -> None:
        with self._writing:
            self._write_pending_now()

    def _write_pending_now(self) -> None:
        raise NotImplementedError

    # -- the log -----------------------------------------------------------------------------
    def _current_segment_path(self) -> Path:
        name = f"{_SEGMENT_PREFIX}{self._segment_number:09d}{_SEGMENT_SUFFIX}"
        return self._wal_dir / name

    def _open_segment(self) -> None:
        self._segment_number += 1
        self._fd = os.open(
            self._current_segment_path(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )

    def _fsync_fd_locked(self) -> None:
        if self._fsync and self._fd >= 0:
            os.fsync(self._fd)
            self._release_waiters_locked(self._written)

    def _sync_loop(self) -> None:
        while not self._stopping.is_set():
            self._sync_wake.wait()
            self._sync_wake.clear()
            time.sleep(self._fsync_interval)
            with self._lock:
                target = self._written
                fd = self._fd
            if target > self._synced and fd >= 0:
                try:
                    os.fsync(fd)
                except OSError:
                    continue  # the segment was switched (and fsynced) meanwhile
            with self._lock:
                self._release_waiters_locked(target)
        with self._lock:
            self._release_waiters_locked(self._written)

    def _release_waiters_locked(self, synced: int) -> None:
        self._synced = max(self._synced, synced)
        still: list[tuple[int, asyncio.Future[None]]] = []
        for position, future in self._sync_waiters:
            if position <= self._synced:
                loop = future.get_loop()
                loop.call_soon_threadsafe(_resolve, future)
            else:
                still.append((position, future))
        self._sync_waiters = still


_HURRY = 0.05  # seconds: the shortest time between two writes woken for awaited rows
_SPOOL_POLL = 0.02  # seconds between looks for collector processes' files (a directory listing)


class BufferedWriter(WriteAheadLog):
    """Owns the server's write-ahead log and buffer; one thread writes batches to the
    warehouse, then loads what collector processes handed over (``spools``)."""

    def __init__(
        self,
        store: EventStore,
        wal_dir: Path,
        *,
        flush_interval_ms: int = 250,
        flush_max_events: int = 50_000,
        max_pending_events: int = 500_000,
        fsync: bool = False,
        fsync_interval_ms: float = 2.0,
        after_write: Callable[[], object] | None = None,
        spools: Spools | None = None,
        watch_spools: bool = False,
        urgent: Callable[[Sequence[EventRow]], bool] | None = None,
    ) -> None:
        super().__init__(
            wal_dir,
            flush_interval_ms=flush_interval_ms,
            flush_max_events=flush_max_events,
            max_pending_events=max_pending_events,
            fsync=fsync,
            fsync_interval_ms=fsync_interval_ms,
            urgent=urgent,
        )
        self._store = store
        self._after_write = after_write  # e.g. the identity map catching up, in this thread
        self.spools = spools
        self._watch = watch_spools  # collector processes run: look for their files often
        self._spools_failed = False
        self.inserted = 0
        self.duplicates = 0

    def _wait(self, until: float) -> None:
        """Until ``until``, or sooner when woken or when a collector process has handed a
        file over: looked for every ``_SPOOL_POLL`` seconds, so a collector's events wait for
        its own hand-over only, not for this writer's turn as well (half an interval on
        average: 125 ms by default, measured in benchmarks/triggers.py --collectors 1)."""
        if self.spools is None or not self._watch or self._spools_failed:
            super()._wait(until)
            return
        while not self._stopping.is_set():
            left = until - time.monotonic()
            if left <= 0 or self._wake.wait(min(left, _SPOOL_POLL)) or self.spools.ready():
                return

    @property
    def pending(self) -> int:
        own = len(self._pending) + self._in_flight
        return own + (self.spools.pending() if self.spools is not None else 0)

    def _write_pending(self) -> None:
        with self._writing:
            self._write_pending_now()
            if self.spools is not None:
                try:
                    self.spools.load(self._after_write)
                    self._spools_failed = False
                except Exception:  # noqa: BLE001 - the files stay; loaded at the next turn
                    self.failures += 1
                    self._spools_failed = True  # the next try after a whole interval
                    log.exception("loading the collector processes' logs failed")

    def _write_pending_now(self) -> None:
        with self._lock:
            if not self._pending:
                return
            pending, self._pending = self._pending, []
            self._in_flight = len(pending)
            old_segment = self._current_segment_path()
            self._fsync_fd_locked()
            os.close(self._fd)
            self._open_segment()
        started = time.perf_counter()
        batch = [_event_row(EventRow, row) for row in pending]
        attempts = 0
        while True:
            try:
                result = self._store.append(batch)
                break
            except Exception:  # noqa: BLE001 - whatever failed, the events must not be lost
                # Keep the segment (the events stay durable) and retry: a full disk or a
                # transient error must not lose acknowledged events.
                attempts += 1
                self.failures += 1
                log.exception("writing %d events failed (attempt %d)", len(batch), attempts)
                if self._stopping.is_set() and attempts >= 3:
                    log.error("leaving %s to be replayed at the next start", old_segment.name)
                    self._in_flight = 0
                    return
                time.sleep(1)
        elapsed = max(time.perf_counter() - started, 1e-6)
        self._rate = max(1000.0, len(batch) / elapsed)
        self.inserted += result.inserted
        self.duplicates += result.duplicates
        old_segment.unlink(missing_ok=True)
        if self._after_write is not None:
            try:
                self._after_write()
            except Exception:  # noqa: BLE001 - the events are stored; the follower catches up later
                log.exception("updating after a write failed; it is retried after the next one")
        # Counted as pending until the identity map has caught up with them too: a client that
        # waits for pending_events == 0 (GET /health) can then look their persons up.
        self._in_flight = 0


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
