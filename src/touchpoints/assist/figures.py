"""The assistant's figures: containment (conversations the assistant finished without a
person), the handover rate per intent, outcomes, the time to the first human response
against its target (``assistant_first_response_seconds``), and satisfaction where asked."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from touchpoints.assist.results import Figures, FirstResponse, IntentFigure
from touchpoints.assist.store import AssistantStore


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def figures(store: AssistantStore, days: int, target: int, now: datetime | None = None) -> Figures:
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    since = now - timedelta(days=days)
    rows = store.started_since(since)
    handed = [row for row in rows if row.handed_over_at is not None]
    per_intent: dict[str, set[str]] = defaultdict(set)
    for conversation, intent in store.intents_since(since):
        if intent not in ("out_of_scope",):
            per_intent[intent].add(conversation)
    handovers = Counter(row.handover_intent or "(none)" for row in handed)
    by_intent = [
        IntentFigure(
            intent=intent,
            conversations=len(conversations),
            handed_over=handovers.get(intent, 0),
            handover_rate=_share(handovers.get(intent, 0), len(conversations)),
        )
        for intent, conversations in sorted(per_intent.items(), key=lambda kv: -len(kv[1]))
    ]
    waits = [
        (row.first_human_at - row.handed_over_at).total_seconds()
        for row in handed
        if row.first_human_at is not None and row.handed_over_at is not None
    ]
    ratings = [row.rating for row in rows if row.rating is not None]
    return Figures(
        since=since,
        conversations=len(rows),
        contained=len(rows) - len(handed),
        containment=_share(len(rows) - len(handed), len(rows)),
        handed_over=len(handed),
        handover_rate=_share(len(handed), len(rows)),
        by_intent=by_intent,
        by_channel=dict(Counter(row.channel for row in rows)),
        outcomes=dict(Counter(row.outcome or "open" for row in rows)),
        first_response=FirstResponse(
            answered=len(waits),
            waiting=len(handed) - len(waits),
            median_seconds=_quantile(waits, 0.5),
            p90_seconds=_quantile(waits, 0.9),
            target_seconds=target,
            within_target=_share(sum(wait <= target for wait in waits), len(waits)),
        ),
        ratings=len(ratings),
        satisfaction=round(sum(ratings) / len(ratings), 2) if ratings else None,
    )
