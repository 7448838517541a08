"""Access (GDPR Art. 15 and 20) and erasure (Art. 17 and 19): everything about a person, found
through any identifier, exported as one archive, or erased from every table of the registry,
the import reject files, the write-ahead log and the database file itself.

Erasure, in order:

1. the person's identifiers are suppressed (keyed hashes; see :mod:`.suppression`), so an
   event that arrives meanwhile is dropped on its way in;
2. the writer is drained and held (a server's buffered events are written, or dropped, and
   their write-ahead log segments deleted);
3. in one transaction, every table of the registry loses the person's rows (the events that
   carry one of their identifiers, at any place, and everything derived from them);
4. what the identity map joined to the person through those events (persons a merge rule
   kept apart) is computed again without them, and their journeys derived again;
5. import reject files lose the lines that mention the person;
6. the database file is rewritten (:meth:`Warehouse.compact`), so no byte of the person is
   left in its free blocks or its log;
7. the Parquet exports written before (``touchpoints export``, ``export_dir``) have the
   files that held the person's rows written again without them, and so do the identity
   maps computed outside and loaded (``touchpoints identity load``: their persons and
   rejections files; :func:`touchpoints.identity.outside.reach_results`).

Between 3 and 6, the audience files (a file destination's CSV or Parquet of an audience's
members) are written again without the person's rows, and so are their runs still in the
outbox (``reach_files``: the one part that knows them, activate, does it).

The request is recorded with its counts (never the data), naming the person only as
``person:N`` (a number that, once erased, refers to nothing), never by the key asked for.
"""

from __future__ import annotations

import csv
import io
import threading
import zipfile
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from touchpoints.errors import NotFound
from touchpoints.export.results import ExportsReached
from touchpoints.identity.identifiers import Identifier
from touchpoints.identity.outside import reach_results
from touchpoints.identity.resolver import IdentityResolver
from touchpoints.journeys.queries import StageHistoryQuery
from touchpoints.journeys.service import Journeys
from touchpoints.journeys.store import derive_again
from touchpoints.privacy.mentions import Mentions
from touchpoints.privacy.requests import Requests
from touchpoints.privacy.results import Erasure, PrivacyRequest
from touchpoints.privacy.store import PrivacyStore, Subject
from touchpoints.privacy.suppression import Suppressions
from touchpoints.profiles import Profiles
from touchpoints.times import iso
from touchpoints.warehouse import Warehouse
from touchpoints.warehouse.personal import PERSONAL, PersonalTable

# Holds the writer still for the block (a server's), or nothing (in process, no writer).
Pause = Callable[[], Any]
# Brings the Parquet exports written before in step with the warehouse (rows removed).
ReachExports = Callable[[], ExportsReached]
# Takes the person (their identifiers (type, value), their numbers) out of the audience files
# and their runs in the outbox; answers how many files were written again.
ReachFiles = Callable[[Sequence[tuple[str, str]], Sequence[int]], int]


class Rights:
    def __init__(
        self,
        warehouse: Warehouse,
        identity: IdentityResolver,
        profiles: Profiles,
        journeys: Journeys,
        suppressions: Suppressions,
        requests: Requests,
        pause_writes: Pause | None = None,
        reach_exports: ReachExports | None = None,
        reach_files: ReachFiles | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.reach_files = reach_files
        self.store = PrivacyStore(warehouse)
        self.identity = identity
        self.profiles = profiles
        self.journeys = journeys
        self.suppressions = suppressions
        self.requests = requests
        self.pause_writes: Pause = pause_writes or nullcontext
        self.reach_exports = reach_exports
        self._lock = threading.Lock()  # one erasure at a time

    def subject(self, key: str) -> Subject:
        """The person behind ``key`` (any identifier, or person:N), as the registry knows them."""
        self.identity.catch_up()
        return self.store.subject(self.profiles.resolve(key))

    # -- access ------------------------------------------------------------------------------
    def export(self, key: str, by: str | None = None) -> tuple[PrivacyRequest, bytes]:
        """Everything about the person as one ZIP archive (JSON, CSV where tabular, and a
        README that says what each file holds); the request is recorded."""
        request, subject = self._open("export", key, by)
        archive, counts = _Archive(subject).build(self)
        done = self.requests.close(request, "done", subject.key(), {"rows": counts})
        return done, archive

    def _open(
        self, kind: str, key: str, by: str | None, note: str | None = None
    ) -> tuple[PrivacyRequest, Subject]:
        """The request recorded as received, for the person behind ``key`` (named by number
        only: the key asked for may be an identifier, and is not kept); for a key nobody
        has, recorded as refused, and NotFound raised."""
        try:
            subject = self.subject(key)
        except NotFound:
            request = self.requests.open(kind, "(nobody)", by, note)
            self.requests.close(request, "refused", "(nobody)", {"reason": "no such person"})
            raise
        return self.requests.open(kind, subject.key(), by, note), subject

    # -- erasure -----------------------------------------------------------------------------
    def erase(self, key: str, by: str | None = None, note: str | None = None) -> Erasure:
        """Erase the person behind ``key`` everywhere (see the module's docstring)."""
        with self._lock:
            request, subject = self._open("erasure", key, by, note)
            identifiers = [Identifier(t, v) for t, v in subject.values]
            self.suppressions.add(identifiers, request.id)
            with self.pause_writes(), self.identity.lock():
                self.identity.catch_up()
                subject = self.store.subject(subject.person)  # what arrived meanwhile too
                identifiers = [Identifier(t, v) for t, v in subject.values]
                self.suppressions.add(identifiers, request.id)
                component = self.identity.candidate_component(subject.sids)
                others = sorted(component - set(subject.sids))
                removed = self._delete(subject)
                # What the map joined through the person's events is computed again without
                # them (identifiers only those events knew leave with them), and journeys too.
                derive_again(self.warehouse, others)
                self.journeys.answers.clear()  # kept answers can list the person
                orphans = self._delete_orphans(others)
                if orphans:
                    removed["identifiers"] = removed.get("identifiers", 0) + len(orphans)
                self.identity.recompute(sorted(set(others) - set(orphans)))
                lines = self._scrub_reject_files(subject)
                audience_files = (
                    self.reach_files(subject.values, subject.persons) if self.reach_files else 0
                )
                sizes = self.warehouse.compact()
            results = reach_results(self.warehouse, [*subject.sids, *orphans])
            exports = self.reach_exports() if self.reach_exports is not None else None
            outcome: dict[str, Any] = {
                "rows": removed,
                "reject_lines": lines,
                "identifiers": len(identifiers),
            }
            if audience_files:
                outcome["audience_files"] = audience_files
            if results.directories or results.failures:
                outcome["identity_result_files"] = results.files_changed
                outcome["identity_result_failures"] = len(results.failures)
            if exports is not None and (exports.directories or exports.failures):
                outcome["export_files"] = exports.files_changed
                outcome["export_failures"] = len(exports.failures)
            done = self.requests.close(request, "done", subject.key(), outcome)
        return Erasure(
            request=done,
            person=subject.key(),
            identifiers=len(identifiers),
            removed=removed,
            reject_lines=lines,
            persons_recomputed=len(set(self.store.persons_of(others).values())),
            database_bytes=sizes,
            export_files=exports.files_changed if exports else 0,
            export_failures=exports.failures if exports else [],
            audience_files=audience_files,
            identity_result_files=results.files_changed,
            identity_result_failures=results.failures,
        )

    def _delete(self, subject: Subject) -> dict[str, int]:
        """The subject's rows out of every table of the registry, in one transaction."""
        removed: dict[str, int] = {}
        mentions = Mentions(subject.values)
        texts = {
            table.name: self._mentioning(table, mentions)
            for table in PERSONAL
            if table.finds == "text"
        }
        with self.warehouse.transaction() as cursor:
            for table in PERSONAL:
                if table.finds == "text":
                    count = self.store.delete_rowids(table, texts[table.name], cursor)
                else:
                    count = self.store.delete(table, subject, cursor)
                if count:
                    removed[table.name] = count
        return removed

    def _delete_orphans(self, sids: list[int]) -> list[int]:
        """Of ``sids``, those no event carries any more (another person's identifier only
        the erased events had), out of every table that names identifiers."""
        with self.warehouse.transaction() as cursor:
            orphans = self.store.eventless_identifiers(sids, cursor)
            if orphans:
                self.store.delete_identifiers(orphans, cursor)
        return orphans

    def _mentioning(self, table: PersonalTable, mentions: Mentions) -> list[int]:
        """The rowids of a ``text`` table's rows whose documents mention the subject."""
        return [
            rowid
            for rowid, *documents in self.store.text_rows(table)
            if any(mentions.in_text(document) for document in documents)
        ]

    def _scrub_reject_files(self, subject: Subject) -> int:
        """Lines mentioning the subject out of every import reject file still there."""
        mentions = Mentions(subject.values)
        removed = 0
        for name in self.store.reject_files():
            path = Path(name)
            try:
                lines = path.read_bytes().splitlines(keepends=True)
            except OSError:
                continue  # moved or deleted since: nothing of ours to scrub
            kept = [line for line in lines if not mentions.in_text(line.decode(errors="replace"))]
            if len(kept) != len(lines):
                removed += len(lines) - len(kept)
                _rewrite(path, b"".join(kept))
        return removed

    # -- the archive's parts --------------------------------------------------------------------
    def rows_of(self, table: PersonalTable, subject: Subject) -> pa.Table:
        if table.finds == "text":
            rowids = self._mentioning(table, Mentions(subject.values))
            return self.store.rows_by_rowid(table, rowids)
        return self.store.rows(table, subject)


def _rewrite(path: Path, content: bytes) -> None:
    """Replace ``path``'s content at once (a new file renamed over it), keeping its mode."""
    fresh = path.with_name(path.name + ".scrubbing")
    fresh.write_bytes(content)
    fresh.chmod(path.stat().st_mode & 0o777)
    fresh.replace(path)


class _Archive:
    """The export: one ZIP with a README, the profile, consent and stages as JSON, and every
    table of the registry with the person's rows as JSON and CSV."""

    def __init__(self, subject: Subject) -> None:
        self.subject = subject

    def build(self, rights: Rights) -> tuple[bytes, dict[str, int]]:
        key = self.subject.key()
        counts: dict[str, int] = {}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            profile = rights.profiles.profile(key, history=True)
            archive.writestr("profile.json", profile.model_dump_json(indent=2))
            consent = rights.profiles.consent_history(key)
            archive.writestr("consent.json", consent.model_dump_json(indent=2))
            stages = rights.journeys.run(StageHistoryQuery(person=key))
            archive.writestr("journey_stages.json", stages.model_dump_json(indent=2))
            for table in PERSONAL:
                rows = rights.rows_of(table, self.subject)
                counts[table.name] = rows.num_rows
                if rows.num_rows:
                    archive.writestr(f"tables/{table.name}.json", _json(rows))
                    archive.writestr(f"tables/{table.name}.csv", _csv(rows))
            archive.writestr("README.md", self._readme(counts))
        return buffer.getvalue(), counts

    def _readme(self, counts: dict[str, int]) -> str:
        subject = self.subject
        lines = [
            f"# What touchpoints holds about {subject.key()}",
            "",
            f"Exported {iso(datetime.now(UTC))} (GDPR Art. 15 and 20), for the person with these "
            "identifiers:",
            "",
            *[f"- {t}: {v}" for t, v in subject.values],
            "",
            "- `profile.json`: the 360° profile: identifiers, every trait with its source and "
            "time (and every earlier value), computed attributes, consent, merges.",
            "- `consent.json`: consent per category as it stands, and every choice made.",
            "- `journey_stages.json`: the journey stages entered, when and through which event.",
            "- `tables/`: every stored row about the person, per table, as JSON (one object a "
            "row, documents as text) and CSV:",
            "",
            "| table | rows | what it holds |",
            "|---|--:|---|",
            *[
                f"| `{table.name}` | {counts.get(table.name, 0)} | {table.holds} |"
                for table in PERSONAL
            ],
            "",
            "Times are UTC. Tables with no row about the person have no file.",
            "",
        ]
        return "\n".join(lines)


def _json(rows: pa.Table) -> bytes:
    return orjson.dumps(rows.to_pylist(), default=str, option=orjson.OPT_INDENT_2)


def _csv(rows: pa.Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(rows.column_names)
    for row in rows.to_pylist():
        writer.writerow(["" if value is None else value for value in row.values()])
    return out.getvalue()
