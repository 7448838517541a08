"""Audience membership for many persons: the time to evaluate an audience (target: under 10 s
for 1,000,000 persons), against the same condition written by hand in DuckDB SQL.

    .venv/bin/python benchmarks/audiences.py [--persons 1000000] [--data-dir DIR]

It makes a data directory whose journey tables hold ``--persons`` persons (one or two
identifiers each, about 5.5 events each: product views, configurations saved with a model,
orders with a revenue, page views, within the last 120 days), a marketing consent choice for
half of them and a churn risk for everyone, written straight into the tables the journeys
keep (loading that many persons through the collector would take hours and measure the
collector), with the journeys' state saying they are current. Then, in a fresh process (so
its peak memory is its own), through the very services the API calls:

- the preview count of the issue's audience ("did Configuration Saved at least 2 times in
  the last 30 days and not Order Completed", with marketing consent and a churn risk under
  0.5), and the same count by a hand-written DuckDB query (the baseline);
- creating that audience (its first evaluation for everyone: every member enters, is written
  with its history and the day's size);
- creating a broad audience (everyone who viewed a product: most persons enter), and its
  count by a hand-written query;
- evaluating everyone again with nothing changed (the schedule's pass);
- a live evaluation after 1,000 persons got a new event.

It prints seconds for each, the members, and the process's peak memory (MB).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints

NOW = datetime(2026, 6, 30, 12, 0)
ISSUE = {
    "key": "high_intent",
    "name": "High intent, no order, reachable",
    "condition": {
        "and": [
            {"event": "Configuration Saved", "at_least": 2, "within_days": 30},
            {"not": {"event": "Order Completed"}},
            {"consent": "marketing"},
            {"prediction": "churn_risk", "lt": 0.5},
        ]
    },
}
BROAD = {"key": "viewers", "name": "Viewed a product", "condition": {"event": "Product Viewed"}}

# The issue's audience by hand: the baseline.
BASELINE_SQL = """
WITH configured AS (
    SELECT person FROM journey_facts
    WHERE event = 'Configuration Saved' AND ts >= ?::TIMESTAMP - INTERVAL 30 DAY
    GROUP BY person HAVING count(*) >= 2
), ordered AS (
    SELECT DISTINCT person FROM journey_facts WHERE event = 'Order Completed'
), consent AS (
    SELECT f.person, c.granted FROM consent_choices c JOIN journey_facts f ON f.seq = c.seq
    WHERE c.category = 'marketing'
    QUALIFY row_number() OVER (PARTITION BY f.person ORDER BY f.ts DESC, f.seq DESC) = 1
), low_risk AS (
    SELECT person FROM churn_scores WHERE churn_risk < 0.5
)
SELECT count(*) FROM configured
WHERE person NOT IN (SELECT person FROM ordered)
  AND person IN (SELECT person FROM consent WHERE granted)
  AND person IN (SELECT person FROM low_risk)
"""


BROAD_SQL = "SELECT count(DISTINCT person) FROM journey_facts WHERE event = 'Product Viewed'"


def generate(data_dir: Path, persons: int) -> dict[str, int]:
    """The journey tables of ``persons`` persons, as the journeys keep them."""
    with Touchpoints(load_settings(data_dir)) as tp:
        run = tp.warehouse.run
        fingerprint = tp.journeys.model.fingerprint()
        run(
            """
            INSERT INTO identifiers
            SELECT p, 'anonymous_id', 'a' || p, p, p, false FROM range(1, ? + 1) t(p)
            UNION ALL
            SELECT ? + p, 'user_id', 'u' || p, p, p, false FROM range(1, ? + 1) t(p)
            WHERE hash(p) % 10 < 4
            """,
            [persons, persons, persons],
        )
        run("INSERT INTO journey_persons SELECT sid, person FROM identifiers")
        # About 5.5 events a person: how many from the person's hash, what from the event's.
        run(
            """
            CREATE TEMP TABLE generated AS
            SELECT row_number() OVER (ORDER BY p, k) AS seq, p AS person, k,
                   ?::TIMESTAMP - to_microseconds(CAST(hash(p, k, 1) % 10368000000000 AS BIGINT))
                       AS ts,
                   CASE WHEN hash(p, k, 2) % 100 < 50 THEN 'Product Viewed'
                        WHEN hash(p, k, 2) % 100 < 70 THEN 'Configuration Saved'
                        WHEN hash(p, k, 2) % 100 < 75 THEN 'Order Completed'
                        ELSE 'Home' END AS event
            FROM range(1, ? + 1) t(p), range(0, 10) u(k)
            WHERE k <= hash(p) % 10
            """,
            [NOW, persons],
        )
        run(
            """
            INSERT INTO journey_facts
            SELECT seq, ts, CASE WHEN event = 'Home' THEN 'page' ELSE 'track' END, event,
                   'web', 'bench', NULL, NULL, NULL, person, person,
                   row_number() OVER (PARTITION BY person ORDER BY ts, seq) - 1,
                   CASE WHEN event = 'Order Completed' THEN 3
                        WHEN event = 'Configuration Saved' THEN 1 ELSE 0 END,
                   NULL, false, false
            FROM generated
            """
        )
        run(
            "INSERT INTO journey_events SELECT seq, ts, "
            "CASE WHEN event = 'Home' THEN 'page' ELSE 'track' END, event, 'web', 'bench', "
            "NULL, NULL, NULL FROM generated"
        )
        run(
            """
            INSERT INTO journey_properties
            SELECT seq, 'model', 'Nordwind ' || (hash(seq) % 5), NULL FROM generated
            WHERE event = 'Configuration Saved'
            UNION ALL
            SELECT seq, 'revenue', CAST(hash(seq) % 60000 AS VARCHAR), hash(seq) % 60000
            FROM generated WHERE event = 'Order Completed'
            """
        )
        run(
            """
            INSERT INTO consent_choices
            SELECT min(seq), 'marketing', hash(person, 7) % 10 < 7 FROM generated
            WHERE hash(person, 3) % 2 = 0 GROUP BY person
            """
        )
        run(
            """
            INSERT INTO journey_stage_entries
            SELECT person, 'awareness', 0, min(ts), min(seq), 'web', min(event),
                   NULL, NULL, false  -- one entry each: no next stage, never went on
            FROM generated GROUP BY person
            """
        )
        run(
            """
            INSERT INTO churn_scores
            SELECT p, 1, ?::TIMESTAMP, (hash(p, 9) % 1000) / 1000.0, 0.5, '{}', NULL, NULL,
                   NULL  -- no features kept: nothing asks for reasons here
            FROM range(1, ? + 1) t(p)
            """,
            [NOW, persons],
        )
        last = int(tp.warehouse.scalar("SELECT max(seq) FROM generated"))
        run("DELETE FROM journey_state")
        run("INSERT INTO journey_state VALUES (?, 0, ?)", [fingerprint, last])
        run("UPDATE identity_state SET processed_seq = ?", [last])
        run("CHECKPOINT")
        return {
            "persons": persons,
            "events": last,
            "identifiers": int(tp.warehouse.scalar("SELECT count(*) FROM identifiers")),
        }


def measure(data_dir: Path) -> dict[str, object]:
    """The timings, in this process (its peak memory is the evaluation's)."""
    out: dict[str, object] = {}
    with Touchpoints(load_settings(data_dir)) as tp:
        tp.evaluation.clock = lambda: NOW
        for definition in (BROAD, ISSUE):  # a data directory measured before
            if tp.audiences.store.definition("audiences", str(definition["key"])):
                tp.audiences.remove(str(definition["key"]))
        started = time.perf_counter()
        answer = tp.warehouse.fetchall(BASELINE_SQL, [NOW])[0][0]
        out["baseline count, hand-written SQL"] = (round(time.perf_counter() - started, 2), answer)
        started = time.perf_counter()
        preview = tp.audiences.preview({"condition": ISSUE["condition"]})
        out["preview count (Ibis, compiled)"] = (
            round(time.perf_counter() - started, 2),
            preview.size,
        )
        assert preview.size == answer, (preview.size, answer)
        started = time.perf_counter()
        viewers = tp.warehouse.fetchall(BROAD_SQL)[0][0]
        out["baseline count of the broad one, hand-written SQL"] = (
            round(time.perf_counter() - started, 2),
            viewers,
        )
        for definition in (ISSUE, BROAD):
            started = time.perf_counter()
            made = tp.audiences.create(definition)
            seconds = round(time.perf_counter() - started, 2)
            out[f"create {made.key}: first evaluation, all enter"] = (seconds, made.size)
        started = time.perf_counter()
        again = tp.evaluation.evaluate_all()
        out["everyone again, nothing changed"] = (
            round(time.perf_counter() - started, 2),
            again.entered + again.exited,
        )
        last = int(tp.warehouse.scalar("SELECT max(seq) FROM journey_facts"))
        persons = int(tp.warehouse.scalar("SELECT count(*) FROM churn_scores"))
        tp.warehouse.run(
            """
            INSERT INTO journey_facts
            SELECT ? + p, ?::TIMESTAMP, 'track', 'Configuration Saved', 'web', 'bench', NULL,
                   NULL, NULL, p * 997 % ? + 1, p * 997 % ? + 1, 99, 1, NULL, false, false
            FROM range(1, 1001) t(p)
            """,
            [last, NOW - timedelta(hours=1), persons, persons],
        )
        tp.warehouse.run("UPDATE journey_state SET facts_seq = ?", [last + 1000])
        tp.warehouse.run("UPDATE identity_state SET processed_seq = ?", [last + 1000])
        tp.warehouse.run(
            "INSERT INTO journey_events SELECT seq, ts, type, event, channel, source, path, "
            "campaign, medium FROM journey_facts WHERE seq > ?",
            [last],
        )
        started = time.perf_counter()
        live = tp.evaluation.catch_up()
        out["live: 1,000 persons with a new event"] = (
            round(time.perf_counter() - started, 2),
            live.persons,
        )
    out["peak MB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(measure(args.measure)))
        return
    root = args.data_dir or Path(tempfile.mkdtemp(prefix="audiences-bench-")) / "data"
    started = time.perf_counter()
    made = generate(root, args.persons)
    print(
        f"generated {made['persons']:,} persons, {made['identifiers']:,} identifiers, "
        f"{made['events']:,} events in {time.perf_counter() - started:.1f} s ({root})"
    )
    found = subprocess.run(
        [sys.executable, __file__, "--measure", str(root)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(found.stdout.strip().splitlines()[-1])
    print(f"{'step':<52} {'seconds':>8} {'persons':>10}")
    for step, value in figures.items():
        if isinstance(value, list):
            print(f"{step:<52} {value[0]:>8.2f} {value[1]:>10,}")
    print(f"peak memory of the evaluating process: {figures['peak MB']} MB")


if __name__ == "__main__":
    main()
