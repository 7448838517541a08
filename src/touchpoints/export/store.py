"""The SQL of the table export: what each exported table holds, the fingerprints that tell
which of its partitions changed, and the ``COPY`` statements with which DuckDB writes the
Parquet files (streaming, in its own threads: no row passes through Python).

Times are written as UTC instants (Parquet ``TIMESTAMP`` adjusted to UTC), which DuckDB
reads as ``TIMESTAMP WITH TIME ZONE`` and Spark as ``timestamp``; the warehouse keeps them
as naive UTC. Partitioned tables are partitioned by ``event_date``, the UTC date of the
event's time, which is a directory (``event_date=2026-05-01``), not a column of the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from touchpoints.warehouse import Warehouse, utc_now

PARTITION = "event_date"


@dataclass(frozen=True)
class ExportedTable:
    """A table of the export: its columns as the warehouse gives them, up to an event seq."""

    name: str
    columns: str  # the exported columns, as SQL over ``source``
    source: str  # the warehouse table
    upto: str | None  # the column that keeps the table within the events written (a seq)
    partition: str | None  # the time whose UTC date partitions the table, if it is
    appended: bool  # rows only come with a growing seq (events): new ones go to new files

    @property
    def partitioned(self) -> bool:
        return self.partition is not None

    @property
    def select(self) -> str:
        """The exported rows; its one parameter (``?``) is the events' high-water mark."""
        part = f", CAST({self.partition} AS DATE) AS {PARTITION}" if self.partition else ""
        within = f"{self.upto} <= ?" if self.upto else "CAST(? AS BIGINT) IS NOT NULL"
        return f"SELECT {self.columns}{part} FROM {self.source} WHERE {within}"


def _utc(column: str) -> str:
    return f'timezone(\'UTC\', "{column}") AS "{column}"'


EVENTS = ExportedTable(
    "events",
    "seq, message_id, type, event, name, user_id, anonymous_id, previous_id, group_id, "
    "properties, traits, context, integrations, "
    + ", ".join(_utc(c) for c in ("timestamp", "original_timestamp", "sent_at", "received_at"))
    + ", channel, source",
    "events",
    upto="seq",
    partition='"timestamp"',
    appended=True,
)

JOURNEY_FACTS = ExportedTable(
    "journey_facts",
    f"seq, {_utc('ts')}, type, event, channel, source, path, campaign, medium, device, person, "
    "order_in_person, stage_index, previous_channel, first_channel_in_stage, "
    "first_event_in_stage",
    "journey_facts",
    upto="seq",
    partition="ts",
    appended=False,
)

IDENTIFIERS = ExportedTable(
    "identifiers",
    "sid, type, value, first_seq, person, detached",
    "identifiers",
    upto="first_seq",
    partition=None,
    appended=False,
)

IDENTITY_LINKS = ExportedTable(
    "identity_links",
    "link_id, after_seq, type_a, value_a, type_b, value_b, source, probability, "
    f"{_utc('created_at')}, removed, note",
    "identity_links",
    upto=None,
    partition=None,
    appended=False,
)

# The consent choices events carried: what an analysis over the files needs to leave out the
# persons who objected, as the journey analyses of touchpoints do.
CONSENT_CHOICES = ExportedTable(
    "consent_choices",
    "seq, category, granted",
    "consent_choices",
    upto="seq",
    partition=None,
    appended=False,
)

# Which identifiers each event had (by ``sid``, anchor at ``pos`` 0): what an identity rebuild
# outside touchpoints (``touchpoints spark rebuild``) reads instead of every event's JSON.
# Partitioned by the event's date, so that new events rewrite only their days.
EVENT_IDENTIFIERS = ExportedTable(
    "event_identifiers",
    "ei.seq, ei.pos, ei.sid",
    "event_identifiers ei JOIN events e ON e.seq = ei.seq",
    upto="ei.seq",
    partition='e."timestamp"',
    appended=False,
)

TABLES = (EVENTS, JOURNEY_FACTS, IDENTIFIERS, EVENT_IDENTIFIERS, IDENTITY_LINKS, CONSENT_CHOICES)


class ExportStore:
    """Reads for the export, each on the calling thread's cursor (one snapshot per block of
    :meth:`Warehouse.transaction`)."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def last_seq(self) -> int:
        """The highest seq stored now: what an export run writes up to."""
        return int(self.warehouse.scalar("SELECT coalesce(max(seq), 0) FROM events"))

    def last_seq_given(self) -> int:
        """The highest seq ever given (deleted events too)."""
        return int(
            self.warehouse.scalar(
                "SELECT greatest((SELECT coalesce(max(seq), 0) FROM events), "
                "(SELECT max(last_seq) FROM event_sequence))"
            )
        )

    def schema_version(self) -> int:
        return self.warehouse.schema_version()

    def columns(self, table: ExportedTable) -> dict[str, str]:
        """The exported columns and their DuckDB types (the partition column left out)."""
        described = self.warehouse.fetchall(f"DESCRIBE ({table.select.replace('?', '0')})")
        return {str(name): str(kind) for name, kind, *_ in described if name != PARTITION}

    def partition_rows(self, table: ExportedTable, upto: int) -> dict[str, int]:
        """Rows per partition up to seq ``upto`` (an appended table's check for deletions)."""
        return {
            str(part): int(rows)
            for part, rows in self.warehouse.fetchall(
                f"SELECT CAST({_part(table)} AS VARCHAR), count(*) "
                f"FROM ({table.select}) GROUP BY ALL",
                [upto],
            )
            if rows
        }

    def fingerprints(self, table: ExportedTable, upto: int) -> dict[str, tuple[int, str]]:
        """Per partition: its rows and the sum of their hashes (DuckDB's ``hash`` of the
        whole row: a row that changes in any column changes the sum)."""
        return {
            str(part): (int(rows), str(fingerprint))
            for part, rows, fingerprint in self.warehouse.fetchall(
                f"SELECT CAST({_part(table)} AS VARCHAR), count(*), "
                f"CAST(sum(hash(t)) AS VARCHAR) FROM ({table.select}) t GROUP BY ALL",
                [upto],
            )
            if rows  # an unpartitioned table's one group, when it has no row
        }

    def remember(self, directory: str) -> None:
        """Note a directory the tables were exported to: erasure and retention reach it."""
        now = utc_now()
        with self.warehouse.transaction():
            updated = self.warehouse.fetchall(
                "UPDATE export_targets SET last_at = ? WHERE path = ? RETURNING path",
                [now, directory],
            )
            if not updated:
                self.warehouse.run(
                    "INSERT INTO export_targets VALUES (?, ?, ?)", [directory, now, now]
                )

    def targets(self) -> list[str]:
        """The directories the tables were exported to, oldest first."""
        return [
            str(path)
            for (path,) in self.warehouse.fetchall(
                "SELECT path FROM export_targets ORDER BY first_at"
            )
        ]

    def copy(
        self,
        table: ExportedTable,
        target: Path,
        name: str,
        *,
        upto: int,
        after: int | None = None,
        partitions: list[str] | None = None,
    ) -> None:
        """Write the table's rows with seq up to ``upto`` (and above ``after``; only in
        ``partitions``) as Parquet under ``target``: a directory per partition, files named
        ``{name}-N.parquet``, for a partitioned table; the file ``target`` otherwise."""
        where, params = ["true"], [upto]
        if after is not None:
            where.append("seq > ?")
            params.append(after)
        if partitions is not None:
            where.append(f"CAST({_part(table)} AS VARCHAR) IN (SELECT part FROM _export_parts)")
        query = f"SELECT * FROM ({table.select}) WHERE {' AND '.join(where)}"
        options = "FORMAT parquet, COMPRESSION zstd"
        if table.partitioned:
            options += f", PARTITION_BY ({PARTITION}), FILENAME_PATTERN '{name}-{{i}}'"
        sql = f"COPY ({query}) TO {_literal(target)} ({options})"
        if partitions is None:
            self.warehouse.run(sql, params)
            return
        parts = pa.table({"part": pa.array(partitions, pa.string())})
        with self.warehouse.registered("_export_parts", parts):
            self.warehouse.run(sql, params)


def _part(table: ExportedTable) -> str:
    return PARTITION if table.partitioned else "''"


def _literal(path: Path) -> str:
    """A path as an SQL string literal (COPY takes no parameter for it)."""
    return "'" + str(path).replace("'", "''") + "'"
