"""The audit log: who did what to which target, when and from where; append-only, chained.

Every line names its **actor** (a key id such as ``key_3f9a…``, a user id ``usr_…``, or an
in-memory key: ``cli`` for commands, ``demo`` for the demo loader), its **action**
(``profile.read``, ``user.create``, ``signin.failure``, …: a kind and a verb), its **target**,
its **origin** (the client's address) and a short **detail**. Targets name persons by their
number (``person:17``) and operators by their id (``user:usr_…``, ``key:key_…``), never by
an identifier's value or a trait: the log must not become a copy of personal data, since an
erasure must leave no identifier behind. :func:`record` refuses a target or detail that
could carry one (an ``@``, an identifier type).

**The hash chain.** Each line's hash is the SHA-256 of the previous line's hash and its own
fields (:func:`line_hash`); the first line follows 64 zeros. The chain's head (the last
line's number and hash) is stored beside the lines and moved in the same transaction as each
append, so :meth:`AuditLog.verify` finds a changed line (its hash no longer fits), a deleted
one (a gap in the numbers, a broken link) and lines cut off the end (the head names more).
Anyone who can write the database file can also rewrite the whole chain: to detect that,
keep the head somewhere else now and then (``touchpoints audit verify`` prints it) and give
it back as an anchor (``--anchor SEQ:HASH``).

**Speed.** Recording is a check and an append to a list under a lock; numbering and hashing
happen when the lines are written, off the request path, so the hot profile lookup can
record every read (``benchmarks/lookup.py`` measures a lookup with and without its line;
figures in benchmarks/RESULTS.md). While the server runs, a thread writes the lines every
100 ms in one Arrow batch; :meth:`AuditLog.close` (a clean shutdown) writes what is left, and
``durable=True`` writes at once (changes to keys, users and persons). Without the thread
(commands in process, tests) every line is written when it is recorded.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from datetime import datetime
from typing import TYPE_CHECKING

import orjson
from pydantic import Field

from touchpoints.access.store import AuditTable, StoredLine
from touchpoints.answers import Answer
from touchpoints.errors import BadRequest
from touchpoints.times import UtcTime
from touchpoints.warehouse import Warehouse, utc_now

if TYPE_CHECKING:
    from touchpoints.access.keys import KeyStore
    from touchpoints.access.users import Users

log = logging.getLogger("touchpoints.audit")

GENESIS = "0" * 64
FLUSH_SECONDS = 0.1
_ACTOR = re.compile(r"^[A-Za-z0-9_.:\-]{1,80}$")
_ACTION = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*$")
# person:N, or an operator's or object's id; never an identifier (email:…, user_id:…).
_TARGET = re.compile(
    r"^(person:[0-9]{1,19}|(key|user|link|pair|item|run|audit|destination|model|audience|trait|trigger|conversation|placement):[A-Za-z0-9_.\-]{1,80})$"
)
# Words, numbers, ids and person numbers; no "@" (an e-mail), no quotes or brackets.
_DETAIL = re.compile(r"^[A-Za-z0-9 _.,:;=+\-/→]{0,300}$")
_ANCHOR = re.compile(r"^([0-9]{1,19}):([0-9a-f]{64})$")


class AuditRefused(BadRequest):
    """A line that may not be recorded as given (it could carry personal data)."""


class AuditLine(Answer):
    seq: int = Field(description="The line's number: 1, 2, 3, … without gaps")
    at: UtcTime
    actor: str = Field(description="A key id, a user id (usr_…) or an in-memory key (cli)")
    action: str = Field(description="What was done: profile.read, user.create, …")
    target: str | None = Field(description="What it was done to: person:N, user:…, key:…")
    origin: str | None = Field(description="The client's address")
    detail: str | None
    hash: str = Field(description="SHA-256 of the previous line's hash and this line")


class AuditPage(Answer):
    count: int = Field(description="Lines matching the filters, not only this page")
    lines: list[AuditLine] = Field(description="Newest first")
    next: int | None = Field(description="Give as 'before' for the next (older) page")
    names: dict[str, str] = Field(
        default_factory=dict,
        description="The names of the users and keys this page names by id (usr_…: anna)",
    )


class AuditCheck(Answer):
    ok: bool
    lines: int = Field(description="Lines read and found linked, up to the first broken one")
    head_seq: int = Field(description="The number of the last line, as the stored head says")
    head_hash: str = Field(description="Keep it elsewhere; give it back as an anchor later")
    first_broken: int | None = Field(description="The first line that does not fit the chain")
    problem: str | None = Field(description="What is wrong there, in words")


def line_hash(
    previous: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str | None,
    origin: str | None,
    detail: str | None,
) -> str:
    """The hash of one line: SHA-256 over the previous hash and the line's fields as a JSON
    array (no separator can be forged inside a field)."""
    fields = orjson.dumps(
        [seq, at.isoformat(timespec="microseconds"), actor, action, target, origin, detail]
    )
    return hashlib.sha256(previous.encode() + b"\n" + fields).hexdigest()


def _hash_of(line: StoredLine, previous: str) -> str:
    return line_hash(
        previous,
        line.seq,
        line.logged_at,
        line.actor,
        line.action,
        line.target,
        line.origin,
        line.detail,
    )


def _answer(line: StoredLine) -> AuditLine:
    return AuditLine(
        seq=line.seq,
        at=line.logged_at,
        actor=line.actor,
        action=line.action,
        target=line.target,
        origin=line.origin,
        detail=line.detail,
        hash=line.hash,
    )


def _checked(actor: str, action: str, target: str | None, detail: str | None) -> None:
    if not _ACTOR.match(actor):
        raise AuditRefused(f"audit: actor {actor!r} is not a key or user id")
    if not _ACTION.match(action):
        raise AuditRefused(f"audit: action {action!r} is not KIND.VERB (e.g. profile.read)")
    if target is not None and not _TARGET.match(target):
        raise AuditRefused(
            "audit: a target names a person as person:N or an object by its id "
            "(user:…, key:…, link:N), never by an identifier's value"
        )
    if detail is not None and not _DETAIL.match(detail):
        raise AuditRefused(
            "audit: a detail holds words, numbers and ids only (no '@', quotes or brackets; "
            "at most 300 characters)"
        )


def listed(items: list[str], shown: int = 10) -> str:
    """``items`` for a detail, the first ``shown`` of them ("person:1, person:2 and 51
    more"): a detail has at most 300 characters, and an unmerge can split a person in many."""
    head = ", ".join(items[:shown])
    return f"{head} and {len(items) - shown} more" if len(items) > shown else head


def operator_names(page: AuditPage, users: Users, keys: KeyStore) -> dict[str, str]:
    """The names of the users and stored keys that ``page`` names by id, as actor or target
    (users are never deleted, only disabled, so an id keeps its name)."""
    ids = {line.actor for line in page.lines}
    ids |= {(line.target or "").partition(":")[2] for line in page.lines}
    known = {user.id: user.name for user in users.list()}
    known.update({key.id: key.name or key.prefix for key in keys.list()})
    return {found: known[found] for found in sorted(ids) if found in known}


def parse_anchor(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` (as ``audit verify`` prints the head) as (seq, hash)."""
    match = _ANCHOR.match(text.strip())
    if match is None:
        raise BadRequest(f"anchor: {text!r} is not SEQ:HASH (a line number and 64 hex digits)")
    return int(match[1]), match[2]


# A recorded line before it is numbered and hashed: (at, actor, action, target, origin, detail).
_Entry = tuple[datetime, str, str, str | None, str | None, str | None]


class AuditLog:
    """The audit log of one warehouse (see the module's docstring)."""

    def __init__(self, warehouse: Warehouse, flush_seconds: float = FLUSH_SECONDS) -> None:
        self._table = AuditTable(warehouse)
        self._flush_seconds = flush_seconds
        self._lock = threading.Lock()  # the chain's end and the pending lines
        self._write_lock = threading.Lock()  # one writer at a time, in order
        self._seq, self._hash = self._table.head()
        # Recorded, not yet numbered and hashed (that is the writer's work, off the request
        # path); then numbered, hashed and waiting to be written.
        self._recorded: list[_Entry] = []
        self._pending: list[tuple[_Entry, StoredLine]] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.write_failures = 0

    # -- recording -------------------------------------------------------------------------
    def record(
        self,
        actor: str,
        action: str,
        target: str | None = None,
        origin: str | None = None,
        detail: str | None = None,
        *,
        durable: bool = False,
    ) -> AuditLine | None:
        """Add a line: ``actor`` did ``action`` to ``target`` from ``origin``.

        Written within 100 ms while the server runs (numbered and hashed then, in the order
        recorded), or at once with ``durable`` or when no writer thread runs: then the line
        as written is returned. On a clean shutdown everything recorded is written."""
        _checked(actor, action, target, detail)
        entry = (utc_now(), actor, action, target, origin[:100] if origin else None, detail)
        with self._lock:
            self._recorded.append(entry)
        if durable or self._thread is None:
            return _answer(self.flush()[id(entry)])
        return None

    def _seal(self) -> None:
        """Number and hash the lines recorded so far, in order (under ``_lock``)."""
        for entry in self._recorded:
            at, actor, action, target, origin, detail = entry
            seq = self._seq + 1
            digest = line_hash(self._hash, seq, at, actor, action, target, origin, detail)
            line = StoredLine(seq, at, actor, action, target, origin, detail, self._hash, digest)
            self._pending.append((entry, line))  # the entry kept: its id stays its own
            self._seq, self._hash = seq, digest
        self._recorded.clear()

    def flush(self) -> dict[int, StoredLine]:
        """Write the lines recorded so far, in order, and move the head; the lines written
        by the id of what :meth:`record` made of them."""
        with self._write_lock:
            with self._lock:
                self._seal()
                pending, self._pending = self._pending, []
            if not pending:
                return {}
            try:
                self._table.append([line for _id, line in pending])
            except BaseException:
                with self._lock:  # kept, in front of newer lines, for the next attempt
                    self._pending[:0] = pending
                raise
            return {id(entry): line for entry, line in pending}

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._recorded) + len(self._pending)

    # -- the writer thread -----------------------------------------------------------------
    def start(self) -> None:
        """Write recorded lines from a thread every ``flush_seconds`` (the server's mode)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._flush_seconds):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - kept pending, tried again; never lost silently
                self.write_failures += 1
                log.exception("audit lines could not be written; %d kept", self.pending)

    def close(self) -> None:
        """Stop the thread and write everything recorded (a clean shutdown loses nothing)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - said loudly: these lines are lost
            log.exception("%d audit lines could not be written at shutdown", self.pending)

    # -- reading ---------------------------------------------------------------------------
    def page(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> AuditPage:
        """Lines matching the filters, newest first (``action`` ending in ``.``: every action
        of that kind, e.g. ``user.``); ``before``: the ``next`` of the page before."""
        self.flush()
        total, lines = self._table.search(
            actor=actor, action=action, since=since, until=until, before=before, limit=limit
        )
        more = len(lines) == limit and lines[-1].seq > 1
        return AuditPage(
            count=total,
            lines=[_answer(line) for line in lines],
            next=lines[-1].seq if more else None,
        )

    def verify(self, anchor: tuple[int, str] | None = None) -> AuditCheck:
        """Walk the chain from line 1 and compare its end with the stored head (and the line
        ``anchor`` names with its hash): the first line that does not fit, and why."""
        self.flush()
        head_seq, head_hash = self._table.head()
        count, previous, expected = 0, GENESIS, 1
        hashes: dict[int, str] = {}
        broken: tuple[int, str] | None = None
        while broken is None:
            chunk = self._table.lines(after=expected - 1)
            if not chunk:
                break
            for line in chunk:
                broken = _link_problem(line, expected, previous)
                if broken is not None:
                    break
                previous, expected, count = line.hash, expected + 1, count + 1
                if anchor is not None and line.seq == anchor[0]:
                    hashes[line.seq] = line.hash
        if broken is None:
            broken = _head_problem(count, previous, head_seq, head_hash)
        if broken is None and anchor is not None:
            broken = _anchor_problem(anchor, hashes.get(anchor[0]), count)
        return AuditCheck(
            ok=broken is None,
            lines=count,
            head_seq=head_seq,
            head_hash=head_hash,
            first_broken=broken[0] if broken else None,
            problem=broken[1] if broken else None,
        )


def _link_problem(line: StoredLine, expected: int, previous: str) -> tuple[int, str] | None:
    if line.seq != expected:
        if line.seq > expected:
            missing = (
                f"line {expected} is missing"
                if line.seq == expected + 1
                else f"lines {expected} to {line.seq - 1} are missing"
            )
            return expected, f"{missing} (deleted): the next line is {line.seq}"
        return line.seq, f"line {line.seq} appears more than once"
    if line.prev_hash != previous:
        return line.seq, (
            f"line {line.seq} does not follow line {line.seq - 1}: the line before it was "
            "changed or replaced"
            if line.seq > 1
            else "line 1 does not start the chain: lines before it were deleted or it was replaced"
        )
    if _hash_of(line, previous) != line.hash:
        return line.seq, f"line {line.seq} was changed: its hash does not fit its fields"
    return None


def _head_problem(
    count: int, last_hash: str, head_seq: int, head_hash: str
) -> tuple[int, str] | None:
    if head_seq > count:
        missing = (
            f"line {count + 1} is missing"
            if head_seq == count + 1
            else f"lines {count + 1} to {head_seq} are missing"
        )
        return count + 1, f"{missing} (deleted from the end): the head names line {head_seq}"
    if head_seq < count:
        return head_seq + 1, (
            f"lines {head_seq + 1} to {count} are not covered by the head, which names line "
            f"{head_seq}: they were added outside touchpoints, or the head was set back"
        )
    if head_hash != last_hash:
        return count, f"line {count} does not fit the head: it was changed or replaced"
    return None


def _anchor_problem(
    anchor: tuple[int, str], found: str | None, count: int
) -> tuple[int, str] | None:
    seq, digest = anchor
    if found is None:
        return seq, f"the anchor names line {seq}, but the log ends at line {count}"
    if found != digest:
        return seq, (
            f"line {seq} differs from the anchor kept for it: the chain was rewritten up to there"
        )
    return None
