"""The journey facts kept current by a running server: every ``journeys_refresh_seconds``
in a :class:`~touchpoints.jobs.PeriodicJob`, the first time just after the start. So the
first analysis after a start, a new stage model or an identity rebuild finds the facts
derived instead of deriving every person's itself (29 s at 10.6 million events); an analysis
that arrives during a derivation waits on the store's lock and then finds it done. After a
refresh that changed the tables, the questions asked recently are answered again
(:meth:`~touchpoints.journeys.service.Journeys.keep_current`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from touchpoints.jobs import PeriodicJob
from touchpoints.journeys.store import Refreshed

log = logging.getLogger("touchpoints.journeys")


def _described(done: Refreshed) -> str | None:
    if not done.events and not done.persons:
        return None  # the usual turn: nothing new
    whom = "everyone" if done.full else "changed persons"
    return (
        f"copied {done.events} events, derived the facts of {done.persons} persons "
        f"({whom}) in {done.seconds:.1f} s"
    )


def journeys_job(
    refresh: Callable[[], Refreshed], interval: float, first: float = 5
) -> PeriodicJob[Refreshed]:
    return PeriodicJob("journeys", refresh, _described, interval=interval, first=first, log=log)
