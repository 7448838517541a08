"""Journey analytics on demo data: the time of each analysis on DuckDB (target: each < 1 s).

    .venv/bin/python benchmarks/journeys.py [--people 100000] [--data-dir DIR] [--repeat 3]

Simulates ``--people`` customers (about 31 events each; 320,000 people make about 10 million
events) and stores them with the identity map kept in step, as benchmarks/identity.py does;
or, with ``--data-dir``, reuses a data directory loaded before (it is loaded there if empty).
Then it brings the journey tables up to date (timed once: the first time derives the facts
of every person, and so does ``--derive-again`` on a directory loaded before), times a
refresh with nothing new and one after 1,000 and 10,000 persons changed, and runs each
analysis ``--repeat`` times through the same service the API uses (which refreshes first,
as the API does), printing the best and the median time. The first
run of each analysis is counted (DuckDB's caches are warm after the journey refresh only;
its SQL is compiled then and found compiled after). Each run computes the answer (the answers
``Journeys.run`` keeps are dropped before it); "asked again" is one more run that finds it
kept, as the same question on unchanged tables does in the server.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from identity import load  # noqa: E402  (the same loader as the identity benchmark)

from touchpoints.config import load_settings  # noqa: E402
from touchpoints.core import Touchpoints  # noqa: E402
from touchpoints.journeys.queries import (  # noqa: E402
    AttributionQuery,
    ChannelMixQuery,
    FunnelComparisonQuery,
    FunnelQuery,
    JourneyMapQuery,
    PathsQuery,
    RetentionQuery,
    StageHistoryQuery,
    StagesQuery,
    VariantsQuery,
)
from touchpoints.journeys.store import refresh  # noqa: E402


def analyses(tp: Touchpoints) -> dict[str, Callable[[], Any]]:
    """Each analysis as the API asks it (``Journeys.run`` with the API's question), on a person
    picked from the data."""
    person = int(tp.warehouse.scalar("SELECT min(person) FROM identifiers"))
    run = tp.journeys.run
    steps = [
        {"event": "Product Viewed"},
        {"event": "Configuration Saved"},
        {"event": "Test Drive Requested"},
        {"event": "Order Completed"},
    ]
    funnel = FunnelQuery.model_validate({"steps": steps, "window": "P60D"})
    by_age = FunnelQuery.model_validate(
        {"steps": steps, "window": "P60D", "breakdown": "age_group"}
    )
    both = FunnelComparisonQuery.model_validate({"steps": steps, "window": "P60D"})
    return {
        "stages (persons per stage)": lambda: run(StagesQuery()),
        "stage history of one person": lambda: run(StageHistoryQuery(person=f"person:{person}")),
        "journey map": lambda: run(JourneyMapQuery()),
        "funnel, 4 steps, per person": lambda: run(funnel),
        "funnel per person and per device": lambda: run(both),
        "funnel by age group": lambda: run(by_age),
        "retention by week": lambda: run(RetentionQuery(period="week")),
        "paths after Configurator Started": lambda: run(PathsQuery(start="Configurator Started")),
        "journey variants": lambda: run(VariantsQuery()),
        "channel mix by age band": lambda: run(ChannelMixQuery()),
        "attribution (six models)": lambda: run(AttributionQuery()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--derive-again",
        action="store_true",
        help="derive every person's facts again first (as after a new stage model), timed",
    )
    args = parser.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="tp-journeys-")) / "data"
    with Touchpoints(load_settings(data_dir)) as tp:
        events = int(tp.warehouse.scalar("SELECT count(*) FROM events"))
        if events == 0:
            stored, seconds, _sim = load(tp, args.people, args.seed, data_dir.parent / "demo")
            events = stored
            print(f"loaded {args.people:,} people: {stored:,} events in {seconds:.1f} s")
        model = tp.journeys.model
        if args.derive_again:
            refresh(tp.warehouse, model)  # events copied first: only the derivation is timed
            tp.warehouse.run("UPDATE journey_state SET model = 'another model'")
        done = refresh(tp.warehouse, model)
        print(
            f"journey tables brought up to date: {done.events:,} events copied, facts of "
            f"{done.persons:,} persons derived {'in full ' if done.full else ''}in "
            f"{done.seconds:.1f} s ({events:,} events in the warehouse)"
        )
        print(f"refresh with nothing new: {refresh(tp.warehouse, model).seconds:.3f} s")
        for count in (1_000, 10_000):
            # As if the identity map had moved identifiers of ``count`` persons: their facts
            # are derived again on the next refresh, as after merges or new events.
            tp.warehouse.run(
                "UPDATE journey_persons SET person = -person WHERE person IN "
                f"(SELECT DISTINCT person FROM identifiers ORDER BY person LIMIT {count})"
            )
            again = refresh(tp.warehouse, model)
            print(
                f"refresh after {count:,} persons changed: {again.persons:,} persons derived "
                f"again in {again.seconds:.2f} s"
            )
        print("| analysis | best s | median s | runs | asked again s |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name, run in analyses(tp).items():
            times = []
            for _ in range(args.repeat):
                tp.journeys.answers.clear()  # computed each time, not answered from memory
                started = time.perf_counter()
                run()
                times.append(time.perf_counter() - started)
            started = time.perf_counter()
            run()  # the same question on the same tables: the answer kept
            again = time.perf_counter() - started
            print(
                f"| {name} | {min(times):.2f} | {statistics.median(times):.2f} | {len(times)} "
                f"| {again:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
