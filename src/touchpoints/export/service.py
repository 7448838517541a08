"""Open tables: the warehouse's events, identifiers, identity links, kept journey facts and
consent choices written to a directory as Hive-partitioned Parquet that DuckDB, Spark and
other engines read as they are, incrementally and idempotently (``touchpoints export --to
DIR``, ``POST /v1/export``, and every ``export_interval_minutes`` in a server with
``export_dir``).

A run, for each table of :data:`~touchpoints.export.store.TABLES`:

- **events** are appended: the rows above the table's high-water mark (a seq), up to the
  highest seq stored when the run began, go to new files, in chunks of
  :data:`CHUNK_EVENTS`, the manifest committed after each (a stopped run resumes from the
  last chunk committed). Before that, a partition that holds fewer rows in the warehouse
  than in the export (an erasure, retention), or too many small files, is written again.
- **journey facts, identifiers, identity links, consent choices** change in place (a merge
  moves events to another person): each partition's rows are fingerprinted (a sum of row
  hashes), and only the partitions whose fingerprint changed are written again. They stop
  at the events' high-water mark, so the tables of one export agree.

Each file is staged, flushed and renamed into place (:mod:`.files`); the manifest, renamed
into place after, is the commit (:mod:`.manifest`). A run that finds nothing new writes
nothing at all, not even the manifest. Runs are serialised.

Exported files hold personal data. Each directory written is remembered (the table
``export_targets``); an erasure and retention call :meth:`Exporter.reach` to write again, at
once, the partitions that held the rows they removed.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from touchpoints.errors import InvalidRequest, TouchpointsError
from touchpoints.export import files
from touchpoints.export.manifest import (
    MANIFEST,
    FileEntry,
    IdentityRules,
    Manifest,
    Partition,
    TableManifest,
    read_manifest,
    write_manifest,
)
from touchpoints.export.results import ExportQuery, ExportRun, ExportsReached, TableExported
from touchpoints.export.store import PARTITION, TABLES, ExportedTable, ExportStore
from touchpoints.times import iso
from touchpoints.warehouse import Warehouse, WarehouseError

log = logging.getLogger("touchpoints.export")

CHUNK_EVENTS = 1_000_000  # events per appended step (seqs, so fewer after deletions)
MAX_FILES = 24  # a partition of more files is written again as one


class Exporter:
    def __init__(
        self,
        warehouse: Warehouse,
        refresh: Callable[[], object],
        written_by: str,
        identity: Callable[[], IdentityRules] | None = None,
    ) -> None:
        self.store = ExportStore(warehouse)
        self.warehouse = warehouse
        self.refresh = refresh  # the identity map and the journey facts brought up to date
        self.written_by = written_by
        self.identity = identity  # the identity rules, noted in the manifest
        self._lock = threading.Lock()

    def run(self, query: ExportQuery) -> ExportRun:
        """Write what is new since the last run into ``query.to`` (see the module)."""
        with self._lock:
            return _Run(self, Path(query.to)).go(append=True)

    def check(self, directory: Path) -> None:
        """Refuse (:class:`~touchpoints.errors.InvalidRequest`, saying why) a directory an
        export could not write: a server checks its ``export_dir`` before it starts."""
        files.prepare(directory)
        read_manifest(directory)

    def reach(self, also: Path | None = None) -> ExportsReached:
        """After rows were removed (an erasure, retention): every export directory written
        before (and ``also``, the server's ``export_dir``) has the partitions that held them
        written again, nothing new added. A directory gone or unwritable is reported."""
        wanted = [Path(p) for p in self.store.targets()]
        if also is not None and also not in wanted:
            wanted.append(also)
        reached, changed, failures = 0, 0, []
        with self._lock:
            for directory in wanted:
                if not (directory / MANIFEST).is_file():
                    continue  # moved or deleted since: nothing of ours is there
                try:
                    run = _Run(self, directory).go(append=False)
                except (TouchpointsError, OSError, WarehouseError) as exc:
                    failures.append(f"{directory}: {str(exc).splitlines()[0]}")
                    continue
                reached += 1
                changed += sum(t.files_written + t.files_removed for t in run.tables)
        for failure in failures:
            log.error("an export directory could not be brought in step: %s", failure)
        return ExportsReached(directories=reached, files_changed=changed, failures=failures)


class _Run:
    """One run into one directory."""

    def __init__(self, exporter: Exporter, directory: Path) -> None:
        self.exporter = exporter
        self.store = exporter.store
        self.directory = directory
        self.manifest = Manifest()
        self.number = 0
        self.step = 0
        self.staging = directory

    def go(self, append: bool) -> ExportRun:
        started = time.perf_counter()
        files.prepare(self.directory)
        found = read_manifest(self.directory)
        if found is None:
            self._commit()  # the directory is an export from now on (files.prepare)
        else:
            self.manifest = found
        leftovers = files.clear_leftovers(
            self.directory, [t.name for t in TABLES], self.manifest.listed()
        )
        self.exporter.refresh()
        marked = self._table("events").high_water_mark
        if marked > self.store.last_seq_given():
            raise InvalidRequest(
                f"{self.directory} holds events up to seq {marked}, which this data directory "
                "never had: it is the export of another one; export into a new directory"
            )
        upto = self.store.last_seq() if append else marked
        rules = self.exporter.identity() if self.exporter.identity else None
        new_rules = rules is not None and rules != self.manifest.identity
        if rules is not None:
            self.manifest.identity = rules
        self.number = self.manifest.runs + 1
        self.staging = self.directory / f"{files.STAGING_PREFIX}{self.number:06d}"
        try:
            exported = [self._export(table, upto) for table in TABLES]
        except WarehouseError as exc:
            raise InvalidRequest(
                f"writing {self.directory} failed: {str(exc).splitlines()[0]}; nothing "
                "half-written is visible, and the next run resumes"
            ) from None
        finally:
            shutil.rmtree(self.staging, ignore_errors=True)
        if new_rules:
            self._commit()  # other rules, and no row changed (yet): the manifest says so
        self.store.remember(str(self.directory))
        return ExportRun(
            directory=str(self.directory),
            manifest=str(self.directory / MANIFEST),
            tables=exported,
            leftovers_removed=leftovers,
            seconds=round(time.perf_counter() - started, 3),
        )

    # -- a table ---------------------------------------------------------------------------
    def _table(self, name: str) -> TableManifest:
        return self.manifest.tables.setdefault(name, TableManifest())

    def _export(self, table: ExportedTable, upto: int) -> TableExported:
        kept = self._table(table.name)
        columns = self.store.columns(table)
        tally = _Tally()
        replaced: list[FileEntry] = []
        if kept.columns != columns:
            # New to the export, or its columns changed (a newer touchpoints): written
            # again whole, so that every file of a table has the same columns.
            replaced = kept.files()
            kept = self.manifest.tables[table.name] = TableManifest(
                partitioned_by=[PARTITION] if table.partitioned else [], columns=columns
            )
        if table.appended:
            self._repair(table, kept, tally)
            self._append(table, kept, upto, tally)
        else:
            self._mirror(table, kept, upto, tally)
        if replaced:
            tally.removed += files.delete(self.directory, replaced)
            files.prune_empty(self.directory / table.name)
        return TableExported(
            table=table.name,
            rows=kept.rows,
            rows_written=tally.rows,
            files_written=tally.written,
            files_removed=tally.removed,
            partitions_rewritten=tally.rewritten,
            high_water_mark=kept.high_water_mark,
        )

    def _repair(self, table: ExportedTable, kept: TableManifest, tally: _Tally) -> None:
        """Partitions whose rows up to the mark the warehouse no longer all holds, or that
        have grown too many files, written again from what it holds."""
        with self.exporter.warehouse.transaction():
            held = self.store.partition_rows(table, kept.high_water_mark)
            stale = sorted(
                part
                for part in set(held) | set(kept.partitions)
                if part not in kept.partitions
                or held.get(part, 0) != kept.partitions[part].rows
                or len(kept.partitions[part].files) > MAX_FILES
            )
            if not stale:
                return
            written = self._write(table, kept.high_water_mark, partitions=stale)
        self._replace(table, kept, stale, written, {}, tally)

    def _append(self, table: ExportedTable, kept: TableManifest, upto: int, tally: _Tally) -> None:
        while kept.high_water_mark < upto:
            after = kept.high_water_mark
            until = min(after + CHUNK_EVENTS, upto)
            written = self._write(table, until, after=after)
            for part, entries in written.items():
                partition = kept.partitions.setdefault(part, Partition())
                partition.files.extend(entries)
                partition.rows += sum(e.rows for e in entries)
                tally.count(entries)
            kept.high_water_mark = until
            self._commit()

    def _mirror(self, table: ExportedTable, kept: TableManifest, upto: int, tally: _Tally) -> None:
        with self.exporter.warehouse.transaction():
            current = self.store.fingerprints(table, upto)
            changed = sorted(
                part
                for part, (_rows, fingerprint) in current.items()
                if part not in kept.partitions or kept.partitions[part].fingerprint != fingerprint
            )
            gone = sorted(set(kept.partitions) - set(current))
            written = self._write(table, upto, partitions=changed) if changed else {}
        if changed or gone:
            fingerprints = {part: current[part][1] for part in changed}
            self._replace(table, kept, changed + gone, written, fingerprints, tally)
        if kept.high_water_mark != upto:
            kept.high_water_mark = upto
            self._commit()

    def _replace(
        self,
        table: ExportedTable,
        kept: TableManifest,
        parts: list[str],
        written: dict[str, list[FileEntry]],
        fingerprints: dict[str, str],
        tally: _Tally,
    ) -> None:
        """``parts`` of the table now hold the ``written`` files (none: the partition is
        gone); committed, then the files they held before are deleted."""
        old_parts = {part: kept.partitions[part].files for part in parts if part in kept.partitions}
        old = [entry for entries in old_parts.values() for entry in entries]
        for part in parts:
            entries = written.get(part, [])
            if entries:
                kept.partitions[part] = Partition(
                    rows=sum(e.rows for e in entries),
                    fingerprint=fingerprints.get(part),
                    files=entries,
                )
                tally.count(entries)
            else:
                kept.partitions.pop(part, None)
        tally.rewritten += sum(1 for part in parts if part in written and old_parts.get(part))
        self._commit()
        tally.removed += files.delete(self.directory, old)
        files.prune_empty(self.directory / table.name)

    def _write(
        self,
        table: ExportedTable,
        upto: int,
        *,
        after: int | None = None,
        partitions: list[str] | None = None,
    ) -> dict[str, list[FileEntry]]:
        """Rows of the table to new files in their places (not yet in the manifest): DuckDB
        writes them under the staging directory, and each is moved into place."""
        self.step += 1
        name = f"part-{self.number:06d}-{self.step:04d}"
        staging = self.staging / f"{table.name}-{self.step:04d}"
        files.private_dirs(self.directory, staging)
        target = staging if table.partitioned else staging / f"{name}.parquet"
        wanted = partitions if table.partitioned else None
        self.store.copy(table, target, name, upto=upto, after=after, partitions=wanted)
        written: dict[str, list[FileEntry]] = {}
        for part, path in files.staged_files(staging):
            where = f"{PARTITION}={part}/" if table.partitioned else ""
            relative = f"{table.name}/{where}{path.name}"
            written.setdefault(part, []).append(files.place(self.directory, path, relative))
        return written

    def _commit(self) -> None:
        """The manifest as it stands now, in place: what was written so far is the export.
        Any commit of a run takes its number, so a run after a stopped one names its files
        afresh."""
        self.manifest.runs = max(self.manifest.runs, self.number)
        self.manifest.warehouse_schema = self.store.schema_version()
        self.manifest.written_by = self.exporter.written_by
        self.manifest.updated_at = iso(datetime.now(UTC))
        write_manifest(self.directory, self.manifest)


class _Tally:
    def __init__(self) -> None:
        self.rows = 0
        self.written = 0
        self.removed = 0
        self.rewritten = 0

    def count(self, entries: list[FileEntry]) -> None:
        self.rows += sum(e.rows for e in entries)
        self.written += len(entries)
