"""Audience files: an audience's members written through a file destination as one whole file
(CSV or Parquet) on a schedule, the way Segment Engage and Braze hand an audience to an ad
platform or a call centre.

A link of mode ``file`` (``Audiences.link``) has a :class:`Schedule` (``every 15 minutes``,
``every 2 hours``, ``daily at 06:00``, UTC). Each run (at the link, then as the schedule
falls due, or on demand) puts one message in the destination's outbox, in one transaction
with the link's figures: every member who granted the destination's purposes, as rows of
:data:`~touchpoints.activate.senders.SNAPSHOT_COLUMNS`. The delivery worker writes it as the
link's one file, ``<directory>/<audience key>.csv`` (or ``.parquet``), replaced whole; the
messages of one link share an ordering key, so a retried run is never written over a later
one, and a retry is the same message (same id, same rows).

Privacy: a link keeps only its latest file, under a stable name. An erasure takes the person's
rows out of that file at once, and out of every run still in the outbox; a run written after
the erasure leaves out rows of erased identifiers (the suppression list), and the file is
written under :attr:`AudienceFiles.lock`, which the erasure holds while it rewrites, so no
write in flight can put the person back. Unlinking (or deleting the audience) removes the file
and the link's runs from the outbox.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson

from touchpoints.activate.audiences.evaluation import Evaluation
from touchpoints.activate.audiences.results import AudienceFileRun
from touchpoints.activate.senders import read_snapshot, snapshot_path, write_snapshot
from touchpoints.activate.service import Destinations
from touchpoints.errors import InvalidRequest, NotFound
from touchpoints.jobs import PeriodicJob
from touchpoints.times import iso

log = logging.getLogger("touchpoints.activate")

ORDERING = "audience-file"  # ordering key of a link's runs: audience-file:<audience>:<destination>
_LONGEST = timedelta(days=7)
_EVERY = re.compile(
    r"every\s+(?:(?P<n>\d{1,5})\s*)?(?P<unit>m|min|mins|minutes?|h|hours?)", re.IGNORECASE
)
_DAILY = re.compile(r"daily\s+(?:at\s+)?(?P<h>\d{1,2}):(?P<m>\d{2})(?:\s+utc)?", re.IGNORECASE)
SCHEDULE_HELP = "every 15 minutes, every 2 hours or daily at 06:00 (UTC)"


@dataclass(frozen=True)
class Schedule:
    """When a file link runs: every ``every`` from the moment it was linked, or daily ``at``
    (UTC)."""

    every: timedelta | None = None
    at: time | None = None

    def text(self) -> str:
        """The schedule written out (what is stored and shown)."""
        if self.at is not None:
            return f"daily at {self.at:%H:%M}"
        assert self.every is not None
        minutes = int(self.every.total_seconds() // 60)
        if minutes % 60 == 0:
            hours = minutes // 60
            return "every hour" if hours == 1 else f"every {hours} hours"
        return "every minute" if minutes == 1 else f"every {minutes} minutes"

    def next_after(self, now: datetime, anchor: datetime) -> datetime:
        """The first run after ``now`` (naive UTC); ``every`` counts from ``anchor``."""
        if self.at is not None:
            found = datetime.combine(now.date(), self.at)
            return found if found > now else found + timedelta(days=1)
        assert self.every is not None
        passed = max(0, int((now - anchor) / self.every))
        found = anchor + self.every * (passed + 1)
        return found if found > now else found + self.every


def parsed_schedule(text: str) -> Schedule:
    """``text`` as a :class:`Schedule`, or InvalidRequest naming the field and the forms."""
    written = " ".join(str(text).split())
    if match := _DAILY.fullmatch(written):
        hour, minute = int(match["h"]), int(match["m"])
        if hour > 23 or minute > 59:
            raise InvalidRequest(f"schedule: {written!r} is not a time of day (00:00 to 23:59)")
        return Schedule(at=time(hour, minute))
    if match := _EVERY.fullmatch(written):
        count = int(match["n"]) if match["n"] is not None else 1
        unit = timedelta(hours=1) if match["unit"].lower().startswith("h") else timedelta(minutes=1)
        every = unit * count
        if not timedelta(minutes=1) <= every <= _LONGEST:
            raise InvalidRequest(
                f"schedule: {written!r} is out of range: from every minute to every 168 hours"
            )
        return Schedule(every=every)
    raise InvalidRequest(f"schedule: {written!r} is not a schedule; write {SCHEDULE_HELP}")


def row_identifiers(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The identifiers (type, value) an audience file's row names its person by."""
    found: list[tuple[str, str]] = []
    for column, kinds in (
        ("user_id", ("user_id",)),
        ("anonymous_id", ("anonymous_id", "device_id")),
        ("email", ("email",)),
    ):
        value = row.get(column)
        if value:
            found.extend((kind, str(value)) for kind in kinds)
    return found


class AudienceFiles:
    """The runs of file links, and what erasure and unlinking do to their files."""

    def __init__(
        self,
        evaluation: Evaluation,
        destinations: Destinations,
        erased: Callable[[Sequence[tuple[str, str]]], bool] = lambda _ids: False,
    ) -> None:
        self.evaluation = evaluation
        self.store = evaluation.store
        self.destinations = destinations
        self.erased = erased  # whether one of the identifiers was erased (suppressed)
        # Held while a link's file is written (the delivery worker), rewritten (an erasure)
        # or removed (an unlink): each is whole before the next begins.
        self.lock = threading.Lock()

    # -- runs ------------------------------------------------------------------------------------
    def link(self, audience_id: int, key: str, destination: int, schedule: Schedule) -> None:
        """Link ``destination`` to the audience as a file link and run it at once, with the
        membership caught up first (as ``run_now`` and ``run_due`` do): else the first file
        misses whoever the live evaluation has not reached yet."""
        self.evaluation.catch_up()
        with self.evaluation.lock, self.store.warehouse.transaction() as cursor:
            now = self.evaluation.clock()
            self.store.link(audience_id, destination, "file", now, cursor, schedule.text())
            self._run(audience_id, key, destination, schedule, now, now, cursor)

    def run_now(self, audience_id: int, key: str, destination: int) -> AudienceFileRun:
        """A run of the link now, besides its schedule (whose next run stays)."""
        self.evaluation.catch_up()
        with self.evaluation.lock, self.store.warehouse.transaction() as cursor:
            found = [
                link
                for link in self.store.file_links(cursor=cursor)
                if link[0] == audience_id and link[2] == destination
            ]
            if not found:
                raise NotFound(f"audience {key} is not exported to destination {destination}")
            (_, _, _, _, schedule, linked_at) = found[0]
            return self._run(
                audience_id,
                key,
                destination,
                parsed_schedule(schedule),
                linked_at,
                self.evaluation.clock(),
                cursor,
                keep_next=True,
            )

    def run_due(self, now: datetime | None = None) -> list[AudienceFileRun]:
        """Every file link whose run is due, run (the server's job calls this)."""
        now = now or self.evaluation.clock()
        if not self.store.file_links(due=now):
            return []
        self.evaluation.catch_up(now)
        runs = []
        for audience_id, key, destination, _config, schedule, linked_at in self.store.file_links(
            due=now
        ):
            with self.evaluation.lock, self.store.warehouse.transaction() as cursor:
                runs.append(
                    self._run(
                        audience_id,
                        key,
                        destination,
                        parsed_schedule(schedule),
                        linked_at,
                        now,
                        cursor,
                    )
                )
        return runs

    def _run(
        self,
        audience_id: int,
        key: str,
        destination: int,
        schedule: Schedule,
        anchor: datetime,
        now: datetime,
        cursor: duckdb.DuckDBPyConnection,
        keep_next: bool = False,
    ) -> AudienceFileRun:
        """One run into the outbox, in the transaction of ``cursor``."""
        _kind, purposes = self.destinations.purposes_of(destination, cursor)
        members = self.store.member_rows(audience_id, cursor)
        consented = self.evaluation.consented([p for p, _ in members], purposes, cursor)
        ids = self.store.identifiers_of(sorted(consented), cursor) if consented else {}
        rows = [
            _row(key, person, since, ids.get(person, {}))
            for person, since in members
            if person in consented
        ]
        skipped = len(members) - len(rows)
        if skipped:
            self.destinations.skipped[destination] = (
                self.destinations.skipped.get(destination, 0) + skipped
            )
        message = self.destinations.enqueue(
            destination,
            {"name": key, "snapshot": True, "members": rows},
            ordering_key=f"{ORDERING}:{audience_id}:{destination}",
            cursor=cursor,
        )
        next_run = schedule.next_after(now, anchor)
        if keep_next:
            current = [
                link[7]
                for link in self.store.links(audience_id, cursor)
                if link[1] == destination and link[7] is not None
            ]
            next_run = current[0] if current else next_run
        self.store.ran(audience_id, destination, len(rows), now, next_run, cursor)
        return AudienceFileRun(
            audience=key,
            destination=destination,
            message_id=message.message_id or "",
            rows=len(rows),
            skipped=skipped,
            at=now,
            next_run_at=next_run,
        )

    # -- the delivery worker's guard ---------------------------------------------------------------
    def admitted(self, destination: int, content: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The rows of a run to write now: None when the link is gone (unlinked since), else
        its rows without those of identifiers erased since it was put in the outbox. Called
        by the file sender under :attr:`lock`."""
        key = str(content.get("name"))
        if not any(link[1] == key and link[2] == destination for link in self.store.file_links()):
            return None
        rows: list[dict[str, Any]] = content.get("members", [])
        return [row for row in rows if not self.erased(row_identifiers(row))]

    # -- erasure and unlinking -------------------------------------------------------------------
    def erase(self, values: Iterable[tuple[str, str]], persons: Iterable[int]) -> int:
        """The person with the identifiers ``values`` (numbered ``persons``) out of every run
        still in an outbox and out of every link's file, at once; the files written again."""
        theirs = _Theirs(set(values), {f"person:{p}" for p in persons})
        activation = self.destinations.store
        with self.store.warehouse.transaction() as cursor:
            for seq, payload in activation.payloads_of(f"{ORDERING}:%", cursor):
                content = orjson.loads(payload)
                kept = [row for row in content.get("members", []) if not theirs(row)]
                if len(kept) != len(content.get("members", [])):
                    content["members"] = kept
                    activation.set_payload(seq, orjson.dumps(content).decode(), cursor)
        changed = 0
        with self.lock:
            for _audience, key, _destination, config, _schedule, _at in self.store.file_links():
                path = snapshot_path(orjson.loads(config), key)
                _partial(path).unlink(missing_ok=True)
                try:
                    rows = read_snapshot(path)
                except FileNotFoundError:
                    continue
                kept = [row for row in rows if not theirs(row)]
                if len(kept) != len(rows):
                    write_snapshot(path, kept)
                    changed += 1
        return changed

    def forget(self, links: Sequence[tuple[int, str, int, str]]) -> None:
        """Links (audience id, key, destination id, config) that are gone: their runs leave
        the outbox and their files are removed."""
        if not links:
            return
        with self.destinations.writing, self.store.warehouse.transaction() as cursor:
            for audience_id, _key, destination, _config in links:
                self.destinations.store.remove_ordered(
                    f"{ORDERING}:{audience_id}:{destination}", cursor
                )
        with self.lock:
            for _audience, key, _destination, config in links:
                path = snapshot_path(orjson.loads(config), key)
                for found in (path, _partial(path)):
                    found.unlink(missing_ok=True)

    def job(self, tick: float = 30.0, first: float = 10.0) -> PeriodicJob[list[AudienceFileRun]]:
        """The server's job: every ``tick`` seconds, the links whose run is due."""
        return PeriodicJob(
            "audience-files",
            self.run_due,
            _described,
            interval=tick,
            first=first,
            log=log,
        )


class _Theirs:
    """Whether an audience file's row is the erased person's: it names one of their
    identifiers, or their number (a person with no id of those kinds)."""

    def __init__(self, values: set[tuple[str, str]], numbers: set[str]) -> None:
        self.values = values
        self.numbers = numbers

    def __call__(self, row: Mapping[str, Any]) -> bool:
        if row.get("anonymous_id") in self.numbers:
            return True
        return any(pair in self.values for pair in row_identifiers(row))


def _row(key: str, person: int, since: datetime, ids: Mapping[str, str]) -> dict[str, Any]:
    """A member as a row of the audience file (named as the audience sync names them)."""
    anonymous = ids.get("anonymous_id") or ids.get("device_id")
    if "user_id" not in ids and anonymous is None:
        anonymous = f"person:{person}"
    return {
        "user_id": ids.get("user_id"),
        "anonymous_id": anonymous,
        "email": ids.get("email"),
        "member_since": iso(since),
        "audience_key": key,
    }


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def _described(runs: list[AudienceFileRun]) -> str | None:
    if not runs:
        return None
    return f"{len(runs)} audience files put in the outbox, {sum(r.rows for r in runs)} rows"
