"""The continuous export: a thread of the server exports to ``export_dir`` every
``export_interval_minutes``, beside the writer (the collector answers from the write-ahead
log, so ingest never waits for it)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from touchpoints.errors import TouchpointsError
from touchpoints.export.results import ExportRun

log = logging.getLogger("touchpoints.export")


class ExportJob:
    """Runs ``export`` in a thread: ``first`` seconds after the server starts, then every
    ``interval`` seconds. Logs counts, never rows; a failure (a directory that went away, a
    full disk) is logged and tried again at the next turn, which resumes where it stopped."""

    def __init__(self, export: Callable[[], ExportRun], interval: float, first: float = 60) -> None:
        self.export = export
        self.interval = interval
        self.first = min(first, interval)
        self.runs = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="touchpoints-export", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def _loop(self) -> None:
        wait = self.first
        while not self._stop.wait(wait):
            wait = self.interval
            try:
                run = self.export()
            except TouchpointsError as exc:
                log.error("export failed: %s; tried again in %.0f s", exc, wait)
                continue
            except Exception as exc:  # noqa: BLE001 - a scheduled job must outlive one failure
                log.error("export failed (%s); tried again in %.0f s", type(exc).__name__, wait)
                continue
            self.runs += 1
            written = sum(t.rows_written for t in run.tables)
            files = sum(t.files_written for t in run.tables)
            log.info("exported %d rows in %d files to %s", written, files, run.directory)
