"""Consent: Segment's categoryPreferences on events and its Consent Preference Updated event
give each person a state per category with its history; a person who never chose passes only
what the defaults grant; the analyses leave out (or only count) a person who denied them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from touchpoints.config import ConfigError, load_settings
from touchpoints.core import Touchpoints
from touchpoints.errors import BadRequest
from touchpoints.journeys.queries import DropOffsQuery, FunnelQuery, StagesQuery


def send(tp: Touchpoints, messages: list[dict[str, Any]], source: str = "consent-test") -> None:
    outcome = tp.judge({"batch": messages}, "batch", source=source)
    assert not outcome.rejected, outcome.rejected
    tp.write_rows(outcome.rows)


def prefs(**categories: bool) -> dict[str, Any]:
    return {"consent": {"categoryPreferences": categories}}


def visit(user: str, day: int, *, bought: bool, context: dict[str, Any] | None = None) -> list:
    events = [
        {"type": "track", "userId": user, "event": "Product Viewed", "messageId": f"{user}-v",
         "timestamp": f"2026-05-{day:02d}T10:00:00Z", "context": context or {}},
    ]  # fmt: skip
    if bought:
        events.append(
            {"type": "track", "userId": user, "event": "Order Completed",
             "messageId": f"{user}-o", "timestamp": f"2026-05-{day:02d}T11:00:00Z"}
        )  # fmt: skip
    return events


@pytest.fixture
def tp(tmp_path: Path):
    with Touchpoints.open(load_settings(tmp_path / "data")) as core:
        yield core


def test_a_person_who_never_chose_passes_only_what_the_defaults_grant(tp: Touchpoints) -> None:
    send(tp, visit("u1", 1, bought=False))
    consent = tp.profiles.consent_history("user_id:u1")
    assert {name: state.granted for name, state in consent.consent.items()} == {
        "necessary": True,
        "analytics": False,
        "marketing": False,
        "personalisation": False,
        "advertising": False,
    }
    assert not any(state.chosen for state in consent.consent.values())
    assert consent.history == []
    assert not tp.profiles.allows("user_id:u1", "marketing")
    assert not tp.profiles.allows("user_id:nobody", "marketing")  # unknown: no pass either
    with pytest.raises(BadRequest, match="purpose: 'mailing' is not a consent purpose"):
        tp.profiles.allows("user_id:u1", "mailing")


def test_choices_on_events_and_the_preference_event_make_a_history_of_changes(
    tp: Touchpoints,
) -> None:
    send(
        tp,
        [
            # A consent tool stamps every event with the preferences as they stand.
            {"type": "page", "anonymousId": "a1", "name": "Home", "messageId": "p1",
             "timestamp": "2026-05-01T10:00:00Z",
             "context": prefs(analytics=True, marketing=False)},
            {"type": "page", "anonymousId": "a1", "name": "Models", "messageId": "p2",
             "timestamp": "2026-05-01T10:05:00Z",
             "context": prefs(analytics=True, marketing=False)},
            {"type": "identify", "anonymousId": "a1", "userId": "u2", "messageId": "i1",
             "timestamp": "2026-05-02T09:00:00Z"},
        ],
        source="web",
    )  # fmt: skip
    send(
        tp,
        [
            {"type": "track", "userId": "u2", "event": "Segment Consent Preference Updated",
             "messageId": "c1", "timestamp": "2026-05-03T09:00:00Z",
             "context": {"library": {"name": "analytics-ios"},
                         **prefs(analytics=True, marketing=True)}},
        ],
        source="app",
    )  # fmt: skip
    consent = tp.profiles.consent_history("user_id:u2")
    changes = [(c.category, c.granted, c.message_id, c.source) for c in consent.history]
    assert changes == [
        ("analytics", True, "p1", "web"),
        ("marketing", False, "p1", "web"),
        ("marketing", True, "c1", "app"),
    ]
    marketing = consent.consent["marketing"]
    assert (marketing.granted, marketing.chosen, marketing.source) == (True, True, "app")
    assert consent.purposes["marketing"] and consent.purposes["analyses"]
    assert not consent.purposes["personalisation"]
    assert tp.profiles.allows("email:none@x.de", "analyses") is False
    assert tp.profiles.allows("anonymous_id:a1", "marketing")
    assert tp.profiles.profile("user_id:u2").consent["marketing"].granted


def _funnel() -> FunnelQuery:
    return FunnelQuery.model_validate(
        {"steps": [{"event": "Product Viewed"}, {"event": "Order Completed"}]}
    )


def three_people(tp: Touchpoints) -> None:
    send(tp, visit("u1", 1, bought=True))
    send(tp, visit("u2", 2, bought=False, context=prefs(analytics=False)))  # denies
    send(tp, visit("u3", 3, bought=False))  # never chose


def test_a_person_who_denied_analytics_is_left_out_of_every_analysis(tp: Touchpoints) -> None:
    three_people(tp)
    funnel = tp.journeys.run(_funnel())
    # By hand: u1 viewed and bought; u3 viewed; u2 is left out.
    assert [step.units for step in funnel.steps] == [2, 1]
    stages = {s.stage: s.reached for s in tp.journeys.run(StagesQuery()).stages}
    assert stages["consideration"] == 2 and stages["purchase"] == 1
    drop = tp.journeys.run(DropOffsQuery(funnel=_funnel(), step=1))
    assert drop.total == 1 and drop.withheld == 0
    # Her profile and stage history stay whole: they are about her, not an analysis.
    assert tp.profiles.profile("user_id:u2").computed.events == 1
    # She changes her mind: from then on she is counted again.
    send(tp, [{"type": "identify", "userId": "u2", "messageId": "u2-yes",
               "timestamp": "2026-05-09T10:00:00Z", "context": prefs(analytics=True)}])  # fmt: skip
    assert [step.units for step in tp.journeys.run(_funnel()).steps] == [3, 1]


def test_in_aggregate_mode_a_denying_person_is_counted_but_never_listed(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "data", consent_analyses="aggregate")
    with Touchpoints.open(settings) as tp:
        three_people(tp)
        assert [step.units for step in tp.journeys.run(_funnel()).steps] == [3, 1]
        drop = tp.journeys.run(DropOffsQuery(funnel=_funnel(), step=1))
        u2 = tp.profiles.resolve("user_id:u2")
        assert drop.total == 2 and drop.withheld == 1
        assert [unit.person for unit in drop.units] == [tp.profiles.resolve("user_id:u3")]
        assert u2 not in [unit.person for unit in drop.units]


def test_consent_settings_are_checked_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="consent_purposes.marketing: 'mail' is not one of"):
        load_settings(tmp_path / "data", consent_purposes={"marketing": "mail"})
    with pytest.raises(ConfigError, match="consent_defaults: 'ads' is not one of"):
        load_settings(tmp_path / "data", consent_defaults={"ads": True})


def test_allows_says_what_the_history_says_when_choices_arrive_out_of_order(
    tp: Touchpoints,
) -> None:
    """``allows`` reads only the category's latest choice (one statement): the latest in
    event time, not in arrival, across the person's identifiers, as the history has it."""
    send(
        tp,
        [
            {"type": "track", "userId": "u3", "event": "Segment Consent Preference Updated",
             "messageId": "late", "timestamp": "2026-05-09T09:00:00Z",
             "context": prefs(marketing=False, analytics=True)},
            {"type": "page", "anonymousId": "a3", "name": "Home", "messageId": "early",
             "timestamp": "2026-05-01T09:00:00Z", "context": prefs(marketing=True)},
            {"type": "identify", "anonymousId": "a3", "userId": "u3", "messageId": "link",
             "timestamp": "2026-05-02T09:00:00Z"},
        ],
    )  # fmt: skip
    # Arrives last, happened in between: the choice of May 9 still stands.
    send(
        tp,
        [
            {"type": "page", "anonymousId": "a3", "name": "Models", "messageId": "between",
             "timestamp": "2026-05-05T09:00:00Z", "context": prefs(marketing=True)},
        ],
    )  # fmt: skip
    history = tp.profiles.consent_history("user_id:u3")
    for purpose, category in (("marketing", "marketing"), ("analyses", "analytics")):
        expected = history.consent[category].granted
        assert tp.profiles.allows("user_id:u3", purpose) is expected
        assert tp.profiles.allows("anonymous_id:a3", purpose) is expected
    assert tp.profiles.allows("user_id:u3", "marketing") is False
    assert tp.profiles.allows("user_id:u3", "analyses") is True
    assert tp.profiles.allows("user_id:u3", "personalisation") is False  # never chose: default
