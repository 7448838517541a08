"""The continuous export: to ``export_dir`` every ``export_interval_minutes``, in a
:class:`~touchpoints.jobs.PeriodicJob`. A failure (a directory that went away, a full disk) is
tried again at the next turn, which resumes where it stopped."""

from __future__ import annotations

import logging
from collections.abc import Callable

from touchpoints.export.results import ExportRun
from touchpoints.jobs import PeriodicJob

log = logging.getLogger("touchpoints.export")


def _described(run: ExportRun) -> str:
    written = sum(t.rows_written for t in run.tables)
    files = sum(t.files_written for t in run.tables)
    return f"{written} rows in {files} files to {run.directory}"


def export_job(
    export: Callable[[], ExportRun], interval: float, first: float = 60
) -> PeriodicJob[ExportRun]:
    """``export`` a minute after the server starts, then every ``interval`` seconds."""
    return PeriodicJob("export", export, _described, interval=interval, first=first, log=log)
