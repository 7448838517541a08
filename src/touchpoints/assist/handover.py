"""Handing a conversation to a person: who the customer is, what the routing rules are
told (intent, language, sentiment, business hours, journey stage, lifetime value, churn
risk, an open complaint, the audiences the customer is in), where they send it, and the
summary the agent reads first.

The customer's context is gathered once, at the handover (a stage history, the person's
predictions, their audiences, a few events: tens of milliseconds), never for ordinary
messages. Scores and stages a person does not have (anonymous, never scored, or withheld for
want of consent) are simply absent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from touchpoints.assist import replies, signals
from touchpoints.assist.customer import Customer
from touchpoints.assist.directory import Directory
from touchpoints.assist.engine import Decision, Said
from touchpoints.assist.intents import OUT_OF_SCOPE
from touchpoints.assist.live import Conversation
from touchpoints.assist.results import LastOrder, Summary, Touchpoint
from touchpoints.assist.routing import Facts, Route, Routing
from touchpoints.assist.understanding import Reading
from touchpoints.errors import TouchpointsError


@dataclass(frozen=True)
class Context:
    """What touchpoints knows of the customer at the handover."""

    who: str
    stage: str | None = None
    clv: float | None = None
    churn_risk: float | None = None
    churn_percentile: float | None = None
    audiences: frozenset[str] = frozenset()
    open_complaint: bool = False
    last_order: LastOrder | None = None
    recent: tuple[Touchpoint, ...] = ()


@dataclass(frozen=True)
class Sources:
    """Where the context comes from (the parts below the assistant). ``predicted``: the
    person's predictions as the traits of their profile (``predicted_clv_12m``,
    ``churn_risk``, ``churn_percentile``, …); ``audiences``: the keys of the audiences they
    are in."""

    name: Callable[[int], str | None]
    stage: Callable[[int], str | None]
    predicted: Callable[[int], Mapping[str, object]]
    audiences: Callable[[int], frozenset[str]]
    recent: Callable[[int], list[Touchpoint]]


def _quietly(read: Callable[[int], object], person: int) -> object:
    """A lookup whose absence is an answer (no score, no stage): None instead of an error."""
    try:
        return read(person)
    except TouchpointsError:
        return None


class Handover:
    def __init__(
        self, routing: Routing, directory: Directory, customer: Customer, sources: Sources
    ) -> None:
        self.routing = routing
        self.directory = directory
        self.customer = customer
        self.sources = sources

    def context(self, conv: Conversation) -> Context:
        person = conv.subject
        if person is None:
            return Context(who=_anonymous(conv))
        name = _quietly(self.sources.name, person)
        order = None
        if conv.verified_person is not None:  # the agent sees the order of a proven person
            found = self.customer.latest_order(person)
            if found is not None:
                order = LastOrder(
                    order_id=found.order_id,
                    placed_at=found.placed_at,
                    state=found.state,
                    total=found.total,
                    currency=found.currency,
                )
        recent = _quietly(self.sources.recent, person)
        predicted = _quietly(self.sources.predicted, person)
        scores = predicted if isinstance(predicted, Mapping) else {}
        audiences = _quietly(self.sources.audiences, person)
        return Context(
            who=str(name) if name else f"person:{person}",
            stage=_quietly(self.sources.stage, person),  # type: ignore[arg-type]
            clv=_number(scores.get("predicted_clv_12m")),
            churn_risk=_number(scores.get("churn_risk")),
            churn_percentile=_number(scores.get("churn_percentile")),
            audiences=audiences if isinstance(audiences, frozenset) else frozenset(),
            open_complaint=self.customer.open_complaint(person),
            last_order=order,
            recent=tuple(recent) if isinstance(recent, list) else (),
        )

    def route(
        self,
        conv: Conversation,
        context: Context,
        intent: str | None,
        sentiment: tuple[str, float],
        now: datetime | None = None,
    ) -> tuple[Route, bool]:
        now = now or datetime.now(UTC)
        hours = self.directory.business_hours(now)
        facts = Facts(
            intent=intent,
            language=conv.language,
            channel=conv.channel,
            sentiment=sentiment[0],
            sentiment_score=sentiment[1],
            stage=context.stage,
            business_hours=hours,
            open_complaint=context.open_complaint,
            verified=conv.verified_person is not None,
            clv=context.clv,
            churn_risk=context.churn_risk,
            churn_percentile=context.churn_percentile,
            audiences=context.audiences,
        )
        return self.routing.route(facts), hours

    def summary(
        self,
        conv: Conversation,
        context: Context,
        route: Route,
        hours: bool,
        reason: str,
        understood: list[str],
        sentiment: str,
    ) -> Summary:
        return Summary(
            who=context.who,
            person=f"person:{conv.subject}" if conv.subject is not None else None,
            verified=conv.verified,
            stage=context.stage,
            clv=context.clv,
            churn_risk=context.churn_risk,
            churn_percentile=context.churn_percentile,
            audiences=sorted(context.audiences),
            open_complaint=context.open_complaint,
            last_order=context.last_order,
            recent=list(context.recent),
            understood=understood,
            sentiment=sentiment,
            reason=reason,
            team=route.team,
            priority=route.priority,
            rule=route.rule,
            business_hours=hours,
        )

    def hand_over(
        self,
        conv: Conversation,
        decision: Decision,
        reading: Reading | None,
        earlier: list[str],
        now: datetime,
        events: list[dict[str, Any]],
    ) -> None:
        """Hand ``conv`` to the team the rules choose: its state, team, priority and summary
        set, the customer told (``decision``'s replies), a ``Chatbot Handover`` event.
        ``earlier``: the intents of the customer's earlier messages."""
        context = self.context(conv)
        feeling = (reading.sentiment.label, reading.sentiment.score) if reading else ("neutral", 0)
        intent = conv.intent if conv.intent != OUT_OF_SCOPE else None
        route, hours = self.route(conv, context, intent, feeling, now)
        understood = [*earlier, reading.intent] if reading is not None else list(earlier)
        reason = decision.handover or "asked"
        summary = self.summary(conv, context, route, hours, reason, understood, feeling[0])
        conv.state, conv.team, conv.priority, conv.rule = (
            "queued",
            route.team,
            route.priority,
            route.rule,
        )
        conv.handed_over_at = now.replace(tzinfo=None)
        conv.handover_intent = intent
        conv.summary = summary.model_dump_json()
        team = self.routing.team(route.team)
        label = team.label(conv.language or "de") if team else route.team
        key = "complaint" if decision.complaint else "handover"
        said = replies.say(key, conv.language, team=label, when=self._when(conv, now, hours))
        decision.replies.append(Said(said))
        events.append(
            signals.track(
                conv,
                signals.HANDOVER,
                f"handover{conv.messages + 1}",
                now,
                team=route.team,
                priority=route.priority,
                rule=route.rule,
                intent=intent,
                reason=reason,
            )
        )

    def _when(self, conv: Conversation, now: datetime, hours: bool) -> str:
        """When a person answers: shortly, or when the team is back."""
        if hours:
            return replies.say("handover_now", conv.language)
        opens = self.directory.next_open(now)
        when = replies.moment(self.directory.local(opens), conv.language, now) if opens else "—"
        return replies.say("handover_later", conv.language, when=when)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _anonymous(conv: Conversation) -> str:
    return {"chat": "anonymous visitor", "voice": "unknown caller", "sms": "unknown sender"}.get(
        conv.channel, "anonymous"
    )
