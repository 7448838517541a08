"""Triggers as the faces use them: typed answers, errors that name the place. The API's
routes (``/v1/triggers``), the CLI and the page call these and nothing else.

A definition is checked in two steps: its form (:mod:`.definition`), then what it names
(a destination that takes track calls, an audience, a journey stage, and in a delay's check
what an audience's condition may name). A read first dispatches what is new, so an answer
is never behind the events the identity map has read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson

from touchpoints.activate.audiences.conditions import DefinitionError
from touchpoints.activate.audiences.service import Audiences
from touchpoints.activate.audiences.sync import SYNCED_KINDS
from touchpoints.activate.triggers.definition import (
    AudienceWhen,
    DelayStep,
    SendStep,
    StageWhen,
    TriggerDefinition,
    parsed_trigger,
    stored,
)
from touchpoints.activate.triggers.dispatch import Dispatch
from touchpoints.activate.triggers.results import Checked, Firing, FiringList, Trigger, TriggerList
from touchpoints.errors import Conflict, InvalidRequest, NotFound
from touchpoints.warehouse import utc_now


class Triggers:
    def __init__(
        self, dispatch: Dispatch, audiences: Audiences, resolve: Callable[[str], int]
    ) -> None:
        self.dispatch = dispatch
        self.store = dispatch.store
        self.audiences = audiences
        self.resolve = resolve

    # -- defining ----------------------------------------------------------------------------------
    def check(self, data: Any) -> Checked:
        """Whether ``data`` is a trigger that can be saved (nothing is saved)."""
        found = parsed_trigger(data)
        self._check(found)
        return Checked(key=found.key, summary=found.summary())

    def create(self, data: Any) -> Trigger:
        found = parsed_trigger(data)
        if self.store.definition(found.key) is not None:
            raise Conflict(f"key: a trigger {found.key} exists; change it instead")
        self._check(found)
        self.dispatch.run()  # what came before it is not what it fires for
        with self.dispatch.lock:
            self.store.add(found.key, found.name, stored(found), found.enabled, utc_now())
        return self.get(found.key, dispatch=False)

    def change(self, key: str, data: Any) -> Trigger:
        self._row(key)
        if isinstance(data, dict):
            data = {"key": key, **data}
        found = parsed_trigger(data)
        if found.key != key:
            raise InvalidRequest(f"key: a trigger's key stays {key}")
        self._check(found)
        self.dispatch.run()  # what came before the change fires as it was defined then
        with self.dispatch.lock:
            self.store.change(key, found.name, stored(found), found.enabled, utc_now())
        return self.get(key, dispatch=False)

    def remove(self, key: str) -> None:
        """The trigger, its firings and the delays waiting (what it put in the outbox still
        goes)."""
        row = self._row(key)
        with self.dispatch.lock:
            self.store.remove(row[0])

    def _check(self, trigger: TriggerDefinition) -> None:
        """What the definition names exists."""
        when = trigger.when
        evaluation = self.audiences.evaluation
        if isinstance(when, AudienceWhen):
            known = [row[1] for row in evaluation.store.definitions("audiences")]
            if when.audience not in known:
                listed = f"known: {', '.join(known)}" if known else "there are none yet"
                raise DefinitionError(f"when.audience: no audience {when.audience}; {listed}")
        if isinstance(when, StageWhen):
            stages = [stage.name for stage in evaluation.journeys.model.stages]
            if when.journey_stage not in stages:
                raise DefinitionError(
                    f"when.journey_stage: no journey stage {when.journey_stage!r}; the stages: "
                    f"{', '.join(stages)}"
                )
        for index, step in enumerate(trigger.steps):
            if isinstance(step, SendStep):
                try:
                    kind, _ = self.dispatch.destinations.purposes_of(step.send)
                except NotFound:
                    raise DefinitionError(
                        f"steps[{index}].send: no destination {step.send}"
                    ) from None
                if kind not in SYNCED_KINDS:
                    raise DefinitionError(
                        f"steps[{index}].send: a {kind} destination cannot take a track call; "
                        f"send to a {' or '.join(SYNCED_KINDS)} destination"
                    )
            if isinstance(step, DelayStep) and step.check is not None:
                self.audiences.check_condition(step.check, f"steps[{index}].check")

    # -- reading -----------------------------------------------------------------------------------
    def listing(self) -> TriggerList:
        self.dispatch.run()
        since = utc_now() - timedelta(days=1)
        counts, waiting = self.store.counts(since), self.store.waiting()
        return TriggerList(
            triggers=[_trigger(row, counts, waiting) for row in self.store.definitions()]
        )

    def get(self, key: str, dispatch: bool = True) -> Trigger:
        if dispatch:
            self.dispatch.run()
        row = self._row(key)
        since = utc_now() - timedelta(days=1)
        return _trigger(row, self.store.counts(since), self.store.waiting())

    def firings(
        self, key: str | None = None, person: str | None = None, limit: int = 100
    ) -> FiringList:
        """Firings, newest first: of one trigger or all, of one person or everyone."""
        trigger = self._row(key)[0] if key is not None else None
        found = self.resolve(person) if person is not None else None
        self.dispatch.run()
        return FiringList(
            firings=[
                Firing(
                    id=row[0],
                    trigger=row[1],
                    person=f"person:{row[2]}",
                    cause=orjson.loads(row[3]) if row[3] else {},
                    fired_at=row[4],
                    state=row[5],
                    steps_done=row[6],
                    detail=row[7],
                    changed_at=row[8],
                )
                for row in self.store.firings(trigger, found, limit)
            ]
        )

    def _row(self, key: str) -> tuple[Any, ...]:
        row = self.store.definition(key)
        if row is None:
            raise NotFound(f"no trigger {key}")
        return row


def _trigger(
    row: tuple[Any, ...], counts: dict[int, tuple[int, int]], waiting: dict[int, int]
) -> Trigger:
    definition = orjson.loads(row[3])
    parsed = TriggerDefinition.model_validate(definition)
    fired, day = counts.get(row[0], (0, 0))
    return Trigger(
        key=row[1],
        name=row[2],
        description=parsed.description,
        enabled=bool(row[4]),
        definition=definition,
        summary=parsed.summary(),
        fired=fired,
        fired_day=day,
        waiting=waiting.get(row[0], 0),
        created_at=row[5],
        changed_at=row[6],
    )
