"""Retention: per event name, type or channel, the first matching rule decides how long an
event is kept; older ones leave every table of the registry (identifiers only they carried
too), the quarantine keeps refused events for its own period, and the journey facts stay equal
to computing them from what is left."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from test_journey_store import MODEL, computed, kept

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.journeys.store import refresh
from touchpoints.privacy.retention import retention_job

NOW = datetime.now(UTC).replace(microsecond=0)


def ago(days: int) -> str:
    return (NOW - timedelta(days=days)).isoformat().replace("+00:00", "Z")


def send(tp: Touchpoints, messages: list[dict[str, Any]]) -> None:
    outcome = tp.judge({"batch": messages}, "batch", source="retention-test")
    assert not outcome.rejected, outcome.rejected
    tp.write_rows(outcome.rows)


APP = {"library": {"name": "analytics-ios"}}
EVENTS = [
    # Old web page views: past 13 months.
    {"type": "page", "anonymousId": "old-laptop", "name": "Home", "messageId": "web-old",
     "timestamp": ago(800)},
    {"type": "page", "userId": "u1", "anonymousId": "laptop", "name": "Home",
     "messageId": "web-old-2", "timestamp": ago(500)},
    # A web order as old: orders are kept 10 years (the first rule that matches decides).
    {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "order-old",
     "timestamp": ago(800), "context": {"page": {"url": "https://nordwind.de/kasse"}}},
    # Recent web: kept; an old app event: no rule, kept.
    {"type": "page", "userId": "u1", "anonymousId": "laptop", "name": "Models",
     "messageId": "web-new", "timestamp": ago(10)},
    {"type": "screen", "userId": "u1", "name": "Car", "messageId": "app-old",
     "timestamp": ago(900), "context": APP},
]  # fmt: skip


def settings_at(tmp_path: Path) -> Any:
    return load_settings(
        tmp_path / "data",
        retention=[
            {"event": "Order Completed", "days": 3650},
            {"channel": "web", "days": 395},
        ],
        quarantine_retention_days=30,
    )


def messages(tp: Touchpoints) -> list[str]:
    return sorted(m for (m,) in tp.warehouse.fetchall("SELECT message_id FROM events"))


def test_retention_removes_what_its_rules_say_and_keeps_the_rest(tmp_path: Path) -> None:
    with Touchpoints.open(settings_at(tmp_path)) as tp:
        send(tp, EVENTS)
        bad = tp.judge({"type": "track", "event": "x"}, "track", source="test")
        for days in (40, 5):
            tp.quarantine.hold_events(
                bad.rejected,
                source="test",
                route="track",
                envelope={},
                received_at=(NOW - timedelta(days=days)).replace(tzinfo=None),
            )
        refresh(tp.warehouse, MODEL)

        dry = tp.privacy.run_retention(dry_run=True)
        assert (dry.events, dry.per_rule, dry.quarantine) == (2, [0, 2], 1)
        assert len(messages(tp)) == 5  # a dry run removes nothing

        done = tp.privacy.run_retention()
        assert (done.events, done.per_rule, done.quarantine) == (2, [0, 2], 1)
        assert messages(tp) == ["app-old", "order-old", "web-new"]
        assert tp.quarantine.count() == 1
        # The device only the removed view carried leaves with it; the others stay.
        ids = {v for (v,) in tp.warehouse.fetchall("SELECT value FROM identifiers")}
        assert ids == {"u1", "laptop"} and done.identifiers == 1
        assert (
            tp.warehouse.scalar(
                "SELECT count(*) FROM journey_events WHERE seq NOT IN (SELECT seq FROM events)"
            )
            == 0
        )
        refresh(tp.warehouse, MODEL)
        assert kept(tp) == computed(tp, MODEL)
        assert tp.privacy.run_retention().events == 0  # nothing more to do


def test_the_server_runs_retention_on_a_schedule(tmp_path: Path) -> None:
    with Touchpoints.open(settings_at(tmp_path)) as tp:
        send(tp, EVENTS)
        job = retention_job(tp.privacy.retention, interval=3600, first=0.05)
        job.start()
        try:
            deadline = time.monotonic() + 20
            while job.runs == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            job.stop()
        assert job.runs == 1
        assert messages(tp) == ["app-old", "order-old", "web-new"]


def test_without_retention_settings_a_server_schedules_nothing(tmp_path: Path) -> None:
    with Touchpoints.open(load_settings(tmp_path / "data")) as tp:
        assert tp.privacy.retention_job() is None
    with Touchpoints.open(settings_at(tmp_path)) as tp:
        assert tp.privacy.retention_job() is not None
