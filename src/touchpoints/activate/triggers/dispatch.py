"""Firing triggers: what new events, audience changes and stage entries cause, and the
steps each firing takes (send, set a trait, wait and check again).

A dispatch reads what is new since the last one (the events after
``trigger_state.events_seq`` that the identity map has applied, or for stage triggers the
stage entries derived from them; the audiences' entries and exits after ``audience_seq``)
and finds the persons each trigger fires for (an event trigger's filter is the audience
language compiled by Ibis over the new events of its names only). If any trigger found
some, one transaction holds back those over the trigger's frequency cap (counting the
firings of every person merged into them), records each firing and takes its steps: a
message in the outbox (consent to the destination's purposes checked, set-based), a delay
kept in ``trigger_delays``; and moves the reading position. A crash before the commit
leaves nothing done and nothing read; after it, nothing is done twice. Traits are set after
the commit, through the writer (an identify call whose messageId is the firing's, so a
second write is a duplicate).

A dispatch that finds nothing moves the position in memory only; it is saved with the next
firing, at most ``_SAVE_EVERY`` seconds later, when the server stops, and before other
definitions than those it was read with are used. After a crash the part not saved is read
again by the same definitions, and finds nothing again. (Each statement waits for the
interpreter while the collector keeps it busy: a dispatch that finds nothing is one call to
DuckDB, not eleven; benchmarks/RESULTS.md, triggers.)
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from touchpoints.activate.audiences import compile as expressions
from touchpoints.activate.audiences.evaluation import Evaluation, Queries
from touchpoints.activate.triggers.definition import (
    AudienceWhen,
    DelayStep,
    EventWhen,
    SendStep,
    SetTraitStep,
    StageWhen,
    TriggerDefinition,
)
from touchpoints.activate.triggers.store import (
    BATCH_EVENTS,
    BATCH_PROPERTIES,
    WINDOW,
    TriggerStore,
)
from touchpoints.errors import NotFound
from touchpoints.events import EventRow, any_named
from touchpoints.times import iso
from touchpoints.warehouse import Warehouse, run_sql, utc_now
from touchpoints.warehouse.ibis_gateway import IbisGateway

log = logging.getLogger("touchpoints.triggers")

CHECKED = "_tp_trigger_checked"  # the persons a delay's condition is checked for
_DELAYS_AT_ONCE = 1000
_SAVE_EVERY = 1.0  # seconds: the longest the position moves in memory only
_CHANGES_AT_LEAST = 5.0  # seconds: the longest the last audience change is taken as known


@dataclass(frozen=True)
class Trigger:
    id: int
    key: str
    name: str
    definition: TriggerDefinition
    enabled: bool


@dataclass(frozen=True)
class Cause:
    person: int
    kind: str  # event, audience, journey_stage
    seq: int  # the event's seq, or the audience change's
    about: str  # the event's name, the audience's key, the stage


@dataclass
class Dispatched:
    """What one dispatch did."""

    fired: int = 0
    capped: int = 0
    messages: int = 0
    delays: int = 0
    resumed: int = 0
    stopped: int = 0
    traits: int = 0
    seconds: float = 0.0
    calls: list[dict[str, Any]] = field(default_factory=list)  # identify calls to write


@dataclass
class _Firing:
    id: int
    person: int
    cause: Cause | None
    state: str = "done"
    done: int = 0
    notes: list[str] = field(default_factory=list)


def _names(when: EventWhen) -> list[str]:
    return [when.event] if isinstance(when.event, str) else list(when.event)


class _NewEvents:
    """An Ibis backend as an event trigger reads it: ``journey_facts`` is the events of the
    window that bear the trigger's names (:data:`BATCH_EVENTS`, read from ``events`` as the
    journey tables' narrow copy reads them, with each event's person from the identity
    map), and ``journey_properties`` their properties only (:data:`BATCH_PROPERTIES`).
    Neither the journey tables' copy of the whole batch nor the kept facts (stages, devices)
    are waited for: dispatching follows each written batch at once, and reads out of JSON
    only the properties of the events it may fire for (the copy of a batch of 1,700 events
    took 113 ms of a 270 ms dispatch under the triggers benchmark's load, RESULTS.md)."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def _window(self, table: Any) -> Any:
        window = self._backend.table(WINDOW)
        low, high = window.low.max().as_scalar(), window.high.max().as_scalar()
        return table.filter(table.seq > low, table.seq <= high)

    def table(self, name: str) -> Any:
        if name == "journey_properties":
            return self._backend.table(BATCH_PROPERTIES)
        if name != "journey_facts":
            return self._backend.table(name)
        events = self._backend.table(BATCH_EVENTS)
        carried = self._window(self._backend.table("event_identifiers"))
        carried = carried.filter(carried.seq.isin(events.seq))
        identifiers = self._backend.table("identifiers")
        persons = (
            carried.join(identifiers, carried.sid == identifiers.sid)
            .group_by(carried.seq)
            .aggregate(person=identifiers.person.min())
        )
        return events.join(persons, "seq").select("seq", "ts", "event", "channel", "person")


class Dispatch:
    """Fires triggers; one dispatch at a time (:attr:`lock`, which an erasure holds too)."""

    def __init__(
        self,
        warehouse: Warehouse,
        evaluation: Evaluation,
        write_calls: Callable[[list[dict[str, Any]]], None] | None = None,
        clock: Callable[[], datetime] = utc_now,
        applied: Callable[[], int] | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.store = TriggerStore(warehouse)
        # The last event the identity map has applied: the identity map's own count when
        # given (no statement), else read from the warehouse.
        self.applied = applied or self.store.applied
        self.evaluation = evaluation
        self.journeys = evaluation.journeys
        self.destinations = evaluation.destinations
        self.write_calls = write_calls
        self.clock = clock
        self.lock = threading.RLock()
        self.wake = threading.Event()  # set when events were written or audiences changed
        self.listeners: list[Callable[[Dispatched], None]] = []
        self._compiled: dict[tuple[Any, ...], str] = {}
        self._applied = -1  # the identity map's position at the last dispatch
        # The definitions as last read, with the store's count of changes then: read again
        # only after a change (the Triggers service changes them through this store).
        self._definitions: tuple[int, list[Trigger]] | None = None
        self.watched: frozenset[str] = frozenset()  # the names event triggers fire on
        # Told the names whenever they change (collector processes read them from a file).
        self.on_watched: Callable[[frozenset[str]], object] | None = None
        # The last audience change, read again when the audiences have told of changes
        # since (``_told`` counts their calls), and at least every _CHANGES_AT_LEAST
        # seconds, should a change come some other way: (told then, read at, the change).
        self._told = 0
        # The position is saved with every firing, else at most _SAVE_EVERY seconds after
        # the last save; and before definitions other than those it was read with are used.
        self._saved_at = time.monotonic()
        self._read_with = -1  # the store's count of changes of the definitions last used
        self._changes_head: tuple[int, float, int] | None = None
        # (low, high, names): the events stored with seqs in (low, high] bear none of
        # ``names`` (the watched names when they were stored; see :meth:`appended`). An
        # event trigger's query over a window within them would find nothing, and is not
        # run: under the triggers benchmark's load, nearly every batch (its query took
        # about 50 ms of the two busy cores each time).
        self._quiet: tuple[int, int, frozenset[str]] | None = None

    def touched(self, persons: set[int] | None = None) -> None:
        """The identity map's listener: new events (or a merge) were committed."""
        self.wake.set()

    def appended(self, first: int, rows: Sequence[EventRow]) -> None:
        """The event store's listener: ``rows`` were stored with the seqs from ``first``.
        The quiet range grows by them if none bears a watched name and they follow it, and
        starts again after them otherwise (an append this was not told of leaves a gap,
        and a window across a gap is queried)."""
        if not rows:
            return
        last = first + len(rows) - 1
        watched = self.watched
        quiet = self._quiet
        if any_named(rows, watched):
            self._quiet = (last, last, watched)
        elif quiet is not None and quiet[1] == first - 1 and quiet[2] == watched:
            self._quiet = (quiet[0], last, watched)
        else:
            self._quiet = (first - 1, last, watched)

    def _quiet_between(self, low: int, high: int) -> bool:
        """Whether the events in (``low``, ``high``] bear none of the names event triggers
        watch now."""
        quiet = self._quiet
        return (
            quiet is not None and quiet[2] == self.watched and quiet[0] <= low and high <= quiet[1]
        )

    def audiences_changed(self, changes: Any) -> None:
        """The audiences' listener: persons entered or exited audiences."""
        self._told += 1
        self.wake.set()

    def triggers(self, cursor: Any = None) -> list[Trigger]:
        changes = self.store.changes
        if self._definitions is not None and self._definitions[0] == changes:
            return self._definitions[1]
        found = [
            Trigger(
                row[0],
                row[1],
                row[2],
                TriggerDefinition.model_validate(orjson.loads(row[3])),
                bool(row[4]),
            )
            for row in self.store.definitions(cursor)
        ]
        self._definitions = (changes, found)  # a change meanwhile outdates it
        watched = frozenset(
            name
            for trigger in found
            if trigger.enabled and isinstance(trigger.definition.when, EventWhen)
            for name in _names(trigger.definition.when)
        )
        if watched != self.watched:
            self.watched = watched
            if self.on_watched is not None:
                self.on_watched(watched)
        return found

    def urgent(self, rows: Sequence[EventRow]) -> bool:
        """Whether an enabled event trigger waits for one of ``rows`` (the writer then
        writes them soon, not at its next interval). The names are those of the definitions
        the dispatch last read: a new trigger is known after the next batch."""
        return any_named(rows, self.watched)

    def save(self) -> None:
        """Save the reading position, if it moved in memory only (the server stopping)."""
        with self.lock:
            self.store.save()

    # -- new causes --------------------------------------------------------------------------------
    def run(self, now: datetime | None = None) -> Dispatched:
        """Fire the triggers for what is new since the last dispatch."""
        started = time.perf_counter()
        done = Dispatched()
        with self.lock:
            now = now or self.clock()  # the firings' moment: when the dispatch began
            applied = self.applied()
            triggers = [t for t in self.triggers() if t.enabled]
            stages = any(isinstance(t.definition.when, StageWhen) for t in triggers)
            if stages and applied != self._applied:
                self.journeys.person_source()  # stage entries caught up with the events
            told = self._told  # before the reads: a change after them tells again
            try:
                if self._definitions is not None and self._definitions[0] != self._read_with:
                    # What was read with the definitions before is saved as read before
                    # these are used (see the class's note on the position).
                    self.store.save()
                    self._read_with = self._definitions[0]
                with self.warehouse.using():
                    cursor = self.warehouse.cursor()
                    events_seq, audience_seq = self.store.position(cursor)
                    # Stage triggers read the derived entries; event triggers what the
                    # identity map has applied.
                    facts_seq = self.store.facts_head(cursor) if stages else applied
                    changes_seq = self._changes(cursor, told)
                    new_events = max(events_seq, facts_seq)
                    new_changes = max(audience_seq, changes_seq)
                    if (new_events, new_changes) == (events_seq, audience_seq):
                        self._applied = applied
                        return done
                    quiet = self._quiet_between(events_seq, new_events)
                    found = [
                        (trigger, causes)
                        for trigger in triggers
                        if not (quiet and isinstance(trigger.definition.when, EventWhen))
                        and (
                            causes := self._causes(
                                trigger,
                                (events_seq, new_events),
                                (audience_seq, new_changes),
                                cursor,
                            )
                        )
                    ]
                if found or time.monotonic() - self._saved_at >= _SAVE_EVERY:
                    with self.warehouse.transaction() as cursor:
                        for trigger, causes in found:
                            self._fire(trigger, causes, now, cursor, done)
                        self.store.moved(new_events, new_changes, cursor)
                    self._saved_at = time.monotonic()
                else:
                    self.store.passed(new_events, new_changes)
            except BaseException:
                self.store.forget()  # the position kept may be ahead of what was committed
                self._changes_head = None
                raise
            self._applied = applied
        self._after(done, started)
        return done

    def _changes(self, cursor: Any, told: int) -> int:
        """The last audience change: read when the audiences told of changes since the
        last read (``told``: their count of calls before this dispatch's reads), or
        ``_CHANGES_AT_LEAST`` seconds after it."""
        known, now = self._changes_head, time.monotonic()
        if known is None or known[0] != told or now - known[1] > _CHANGES_AT_LEAST:
            known = (told, now, self.store.changes_head(cursor))
            self._changes_head = known
        return known[2]

    def _causes(
        self,
        trigger: Trigger,
        events: tuple[int, int],
        changes: tuple[int, int],
        cursor: Any,
    ) -> list[Cause]:
        when = trigger.definition.when
        if isinstance(when, AudienceWhen):
            audience = self.store.audience_ids(cursor).get(when.audience)
            if audience is None:
                return []
            rows = self.store.audience_changes(audience, when.on, *changes, cursor)
            return [Cause(p, "audience", s, f"{when.audience} {when.on}") for p, s in rows]
        if events[1] <= events[0]:
            return []
        if isinstance(when, StageWhen):
            rows = self.store.stage_entries(when.journey_stage, *events, cursor)
            return [Cause(p, "journey_stage", s, when.journey_stage) for p, s in rows]
        assert isinstance(when, EventWhen)
        names = _names(when)
        what = ("trigger-event", when.model_dump_json(), "")
        select = self._compiled.get(what)
        if select is not None:  # the batch's tables and the query, in one call
            matched = self.store.batch(events, names, bool(when.where), cursor, select)
        else:  # compiled once per definition, over the tables (an Ibis backend takes ~50 ms)
            self.store.batch(events, names, bool(when.where), cursor)
            queries = Queries(
                IbisGateway(self.warehouse, cursor),
                lambda backend: expressions.World(_NewEvents(backend)),
                "",
                self._compiled,
            )
            select = queries.sql(what[:2], lambda world: _matched(world, when))
            matched = run_sql(cursor, select).fetchall()
        return [Cause(int(row[1]), "event", int(row[0]), str(row[2])) for row in matched]

    def _fire(
        self, trigger: Trigger, causes: list[Cause], now: datetime, cursor: Any, done: Dispatched
    ) -> None:
        """Record a firing for each cause within the cap, and take its steps."""
        limit = trigger.definition.limit
        chosen = causes
        if limit is not None:
            persons = sorted({cause.person for cause in causes})
            since = now - timedelta(seconds=limit.per)
            counts = self.store.fired_since(trigger.id, persons, since, cursor)
            chosen = []
            for cause in causes:
                if counts.get(cause.person, 0) >= limit.times:
                    done.capped += 1
                    continue
                counts[cause.person] = counts.get(cause.person, 0) + 1
                chosen.append(cause)
        if not chosen:
            return
        ids = self.store.new_firing_ids(len(chosen), cursor)
        firings = [_Firing(i, c.person, c) for i, c in zip(ids, chosen, strict=True)]
        self._steps(trigger, firings, 0, now, cursor, done)
        self.store.add_firings(
            [
                (
                    f.id,
                    trigger.id,
                    f.person,
                    _cause_text(f.cause),
                    f.cause.seq if f.cause else None,
                    now,
                    f.state,
                    f.done,
                    "; ".join(f.notes) or None,
                    now,
                )
                for f in firings
            ],
            cursor,
        )
        done.fired += len(firings)

    # -- steps -------------------------------------------------------------------------------------
    def _steps(
        self,
        trigger: Trigger,
        firings: list[_Firing],
        start: int,
        now: datetime,
        cursor: Any,
        done: Dispatched,
    ) -> None:
        """Take ``trigger``'s steps from ``start`` for ``firings``, up to a delay."""
        steps = trigger.definition.steps
        for index in range(start, len(steps)):
            step = steps[index]
            if isinstance(step, DelayStep):
                due = now + timedelta(seconds=step.delay)
                self.store.add_delays(
                    [(f.id, trigger.id, f.person, index, due) for f in firings], cursor
                )
                for firing in firings:
                    firing.state, firing.done = "waiting", index
                done.delays += len(firings)
                return
            if isinstance(step, SendStep):
                self._send(trigger, step, firings, now, cursor, done)
            elif isinstance(step, SetTraitStep):
                self._set_trait(trigger, step, index, firings, now, cursor, done)
        for firing in firings:
            firing.state, firing.done = "done", len(steps)

    def _send(
        self,
        trigger: Trigger,
        step: SendStep,
        firings: list[_Firing],
        now: datetime,
        cursor: Any,
        done: Dispatched,
    ) -> None:
        try:
            _kind, purposes = self.destinations.purposes_of(step.send, cursor)
        except NotFound:
            for firing in firings:
                firing.notes.append(f"no destination {step.send}")
            return
        persons = sorted({f.person for f in firings})
        consented = self.evaluation.consented(persons, purposes, cursor)
        ids = self.evaluation.store.identifiers_of(persons, cursor)
        seqs = [f.cause.seq for f in firings if f.cause is not None and f.cause.kind != "audience"]
        events = self.store.event_properties(seqs, cursor)
        messages = []
        for firing in firings:
            message_id = "msg_" + secrets.token_hex(16)
            call = _call(trigger, step, firing, ids.get(firing.person, {}), events, message_id, now)
            messages.append((firing.person, call, message_id))
            if firing.person not in consented:
                firing.notes.append(f"not sent to destination {step.send}: no consent")
        done.messages += self.destinations.enqueue_many(
            step.send, messages, consented=consented, cursor=cursor
        )

    def _set_trait(
        self,
        trigger: Trigger,
        step: SetTraitStep,
        index: int,
        firings: list[_Firing],
        now: datetime,
        cursor: Any,
        done: Dispatched,
    ) -> None:
        ids = self.evaluation.store.identifiers_of(sorted({f.person for f in firings}), cursor)
        for firing in firings:
            found = ids.get(firing.person, {})
            named = _named(found)
            if not named:
                firing.notes.append(
                    f"{step.set_trait} not set: the person has no user or device id"
                )
                continue
            done.calls.append(
                {
                    "type": "identify",
                    **named,
                    "messageId": f"trigger-{trigger.id}-{firing.id}-{index}",
                    "timestamp": iso(now),
                    "traits": {step.set_trait: step.value},
                    "context": {"library": {"name": "touchpoints"}, "trigger": trigger.key},
                }
            )
            done.traits += 1

    # -- delays ------------------------------------------------------------------------------------
    def run_delays(self, now: datetime | None = None) -> Dispatched:
        """Go on with the firings whose delay has passed: those whose condition still holds
        take the rest of their steps, the others stop."""
        started = time.perf_counter()
        done = Dispatched()
        now = now or self.clock()
        next_due = self.store.next_due()
        if next_due is None or next_due > now:
            return done
        with self.lock:
            self.journeys.person_source()  # conditions read the journey tables
            with self.warehouse.transaction() as cursor:
                due = self.store.due_delays(now, _DELAYS_AT_ONCE, cursor)
                triggers = {t.id: t for t in self.triggers(cursor)}
                groups: dict[tuple[int, int], list[_Firing]] = defaultdict(list)
                for firing_id, trigger_id, person, step, cause in due:
                    groups[(trigger_id, step)].append(
                        _Firing(firing_id, person, _cause_of(person, cause))
                    )
                for (trigger_id, step), firings in groups.items():
                    trigger = triggers.get(trigger_id)
                    if trigger is None:
                        continue
                    self._resume(trigger, step, firings, now, cursor, done)
                self.store.drop_delays([row[0] for row in due], cursor)
                self.evaluation.store.drop_scope(cursor)
        self._after(done, started)
        return done

    def _resume(
        self,
        trigger: Trigger,
        index: int,
        firings: list[_Firing],
        now: datetime,
        cursor: Any,
        done: Dispatched,
    ) -> None:
        steps = trigger.definition.steps
        step = steps[index] if index < len(steps) else None
        going = firings
        if not isinstance(step, DelayStep):  # changed meanwhile: no delay at that step now
            going, reason = [], "the trigger was changed while it waited"
        elif not trigger.enabled:
            going, reason = [], "the trigger is disabled"
        else:
            reason = "its check failed"
            if step.check is not None:
                persons = sorted({f.person for f in firings})
                holding = self._holding(step.check, persons, now, cursor)
                going = [f for f in firings if f.person in holding]
        for firing in firings:
            if firing not in going:
                firing.state, firing.done = "stopped", index + 1
                firing.notes.append(f"stopped after the delay: {reason}")
                done.stopped += 1
        if going:
            self._steps(trigger, going, index + 1, now, cursor, done)
            done.resumed += len(going)
        for firing in firings:
            self.store.update_firing(
                firing.id, firing.state, firing.done, "; ".join(firing.notes) or None, now, cursor
            )

    def _holding(self, condition: Any, persons: list[int], now: datetime, cursor: Any) -> set[int]:
        """Of ``persons``, those ``condition`` holds for now."""
        store = self.evaluation.store
        store.clock(now, cursor)
        store.persons_table(CHECKED, persons, cursor)
        queries = self.evaluation.queries(cursor, CHECKED)
        select = queries.sql(
            ("trigger-check", orjson.dumps(condition.model_dump(by_alias=True)).decode()),
            lambda world: expressions.persons(world, condition),
        )
        found = store.rows(select, cursor)
        return {int(p) for p in found.column("person").to_pylist()}

    # -- after the commit --------------------------------------------------------------------------
    def _after(self, done: Dispatched, started: float) -> None:
        done.seconds = round(time.perf_counter() - started, 3)
        if done.messages:
            self.destinations.wake.set()  # the messages are committed now
        if done.calls and self.write_calls is not None:
            try:
                self.write_calls(done.calls)
            except Exception:  # noqa: BLE001 - the firings stand; the trait is noted lost
                log.exception("setting traits from triggers failed")
        if done.fired or done.resumed or done.stopped:
            log.info(
                "triggers: %d fired, %d capped, %d messages, %d delays started, %d resumed, "
                "%d stopped, %d traits, in %.3f s",
                done.fired,
                done.capped,
                done.messages,
                done.delays,
                done.resumed,
                done.stopped,
                done.traits,
                done.seconds,
            )
        for listener in self.listeners:
            listener(done)


def _matched(world: expressions.World, when: EventWhen) -> Any:
    matched = expressions.matched_events(world, when.event, when.where, when.channel, None)
    return matched.select("seq", "person", "event").order_by("seq")


def _cause_text(cause: Cause | None) -> str:
    if cause is None:
        return ""
    return orjson.dumps({"type": cause.kind, "about": cause.about, "seq": cause.seq}).decode()


def _cause_of(person: int, text: str | None) -> Cause | None:
    """A stored cause (:func:`_cause_text`) again, for the person as they are now."""
    if not text:
        return None
    found = orjson.loads(text)
    return Cause(person, str(found["type"]), int(found["seq"]), str(found["about"]))


def _named(ids: dict[str, str]) -> dict[str, str]:
    named = {}
    if "user_id" in ids:
        named["userId"] = ids["user_id"]
    anonymous = ids.get("anonymous_id") or ids.get("device_id")
    if anonymous is not None:
        named["anonymousId"] = anonymous
    return named


def _call(
    trigger: Trigger,
    step: SendStep,
    firing: _Firing,
    ids: dict[str, str],
    events: dict[int, tuple[str | None, str, str | None]],
    message_id: str,
    now: datetime,
) -> dict[str, Any]:
    """The track call a destination receives for one firing: named by the person's ids (as
    audience calls are), the triggering event's properties with the trigger's key, and
    where it comes from in ``context.trigger``."""
    properties: dict[str, Any] = {}
    cause: dict[str, Any] = {}
    if firing.cause is not None:
        cause = orjson.loads(_cause_text(firing.cause))
        event = events.get(firing.cause.seq)
        if event is not None and firing.cause.kind in ("event", "journey_stage"):
            name, message, raw = event
            cause.update({"event": name, "messageId": message})
            if raw:
                found = orjson.loads(raw)
                if isinstance(found, dict):
                    properties.update(found)
    properties["trigger"] = trigger.key
    call: dict[str, Any] = {
        "type": "track",
        "event": step.event or trigger.name,
        "messageId": message_id,
        "timestamp": iso(now),
        **(_named(ids) or {"anonymousId": f"person:{firing.person}"}),
        "properties": properties,
        "context": {
            "library": {"name": "touchpoints"},
            "trigger": {"key": trigger.key, "name": trigger.name, "firing": firing.id, **cause},
        },
    }
    if "email" in ids:
        call["context"]["traits"] = {"email": ids["email"]}
    return call
