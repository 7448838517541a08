"""The server's live evaluation of audiences: everyone first and then on the schedule, just
after each midnight (UTC) whatever the interval, and the persons the identity map reports
changed in between, at once."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from touchpoints.activate.audiences.live import LiveAudiences, next_full
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints


def test_everyone_is_evaluated_after_the_interval_or_just_after_midnight() -> None:
    morning = datetime(2026, 7, 1, 9, 30)
    assert next_full(morning, 60) == datetime(2026, 7, 1, 10, 30)
    late = datetime(2026, 7, 1, 23, 30)
    assert next_full(late, 60) == datetime(2026, 7, 2, 0, 0, 1)  # not 00:30: midnight first
    assert next_full(morning, 0) == datetime(2026, 7, 2, 0, 0, 1)


def test_a_turn_evaluates_everyone_when_due_and_the_touched_persons_between(
    tmp_path: Path,
) -> None:
    now = [datetime(2026, 7, 1, 23, 0)]
    with Touchpoints.open(load_settings(tmp_path / "data")) as tp:
        tp.evaluation.clock = lambda: now[0]
        tp.audiences.create({"key": "viewers", "name": "v", "condition": {"event": "Viewed"}})
        live = LiveAudiences(tp.evaluation, interval_minutes=60, clock=lambda: now[0])
        assert live.run_once()  # everyone, first
        assert not live.run_once()  # nothing touched, nothing due
        outcome = tp.judge(
            {"type": "track", "userId": "u1", "event": "Viewed", "messageId": "m1"},
            "track",
            source="test",
        )
        tp.write_rows(outcome.rows)  # the identity map tells the evaluation (its listener)
        assert tp.evaluation.wake.is_set()
        assert live.run_once()
        assert tp.audiences.store.member_counts() == {1: 1}
        now[0] += timedelta(hours=1, seconds=2)  # past midnight: everyone again
        assert live.run_once()
        day = tp.audiences.sizes("viewers").sizes
        assert [(p.day.isoformat(), p.size) for p in day][-1] == ("2026-07-02", 1)
