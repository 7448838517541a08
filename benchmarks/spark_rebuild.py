"""Spark local[N] beside DuckDB on the same data: the identity rebuild and three journey
analyses, with the figures a capacity plan needs (docs/scale.md).

    .venv/bin/python benchmarks/spark_rebuild.py --data-dir DIR [--people 32000]
                                                 [--master local[2]] [--repeat 2]

1. Unless ``--data-dir`` holds a database already, simulates ``--people`` customers of the
   demo into it (about 31 events a person: 32,000 make about a million events), the identity
   map kept in step (benchmarks/identity.py's loader; its households share devices, so the
   merge rules bite).
2. Exports it (``touchpoints export``) to DIR/../lake: the first run, timed.
3. The identity rebuild: DuckDB's (:func:`touchpoints.identity.rebuild.rebuild`, reusing the
   stored event identifiers, on a copy of the database) and Spark's
   (``touchpoints spark rebuild``) from the export; Spark's result must equal DuckDB's
   (every identifier's person, and the rejections), and is loaded into the copy
   (``touchpoints identity load``), timed.
4. Three analyses (a 4-step funnel, weekly retention, the channel mix) on DuckDB as served
   (from the journey facts it keeps), on DuckDB computing them from the journey tables (what
   Spark does), and on Spark from the same tables written as Parquet; the answers must agree.

Spark's session start (a JVM) is timed apart. Every figure is the best of ``--repeat`` runs
after one unmeasured warm-up on Spark (its first query compiles); say the machine's load
(``uptime``) with them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from identity import load  # noqa: E402 - the demo loader of benchmarks/identity.py

from touchpoints.config import load_settings  # noqa: E402
from touchpoints.core import Touchpoints  # noqa: E402
from touchpoints.export import ExportQuery  # noqa: E402
from touchpoints.identity.outside import LoadQuery, load_persons  # noqa: E402
from touchpoints.identity.rebuild import rebuild  # noqa: E402
from touchpoints.journeys.channel_mix import channel_mix  # noqa: E402
from touchpoints.journeys.funnels import funnel  # noqa: E402
from touchpoints.journeys.retention import retention  # noqa: E402
from touchpoints.journeys.source import TABLES, Source, duckdb_source  # noqa: E402
from touchpoints.journeys.store import refresh  # noqa: E402

FUNNEL = {
    "steps": [
        {"event": "Product Viewed"},
        {"event": "Configuration Saved"},
        {"event": "Test Drive Requested"},
        {"event": "Order Completed"},
    ],
    "window": "P60D",
}


def best(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    """The best time of ``repeat`` runs, and the last answer."""
    times, answer = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        answer = run()
        times.append(time.perf_counter() - started)
    return min(times), answer


def analyses(as_of: date) -> dict[str, Callable[[Source], Any]]:
    return {
        "funnel, 4 steps": lambda s: funnel(s, FUNNEL).model_dump(),
        "retention by week": lambda s: retention(s, {"period": "week"}).model_dump(),
        "channel mix": lambda s: channel_mix(s, as_of=as_of).model_dump(),
    }


def persons_of(tp: Touchpoints) -> tuple[Any, ...]:
    return tuple(
        tp.warehouse.fetchall(
            "SELECT (SELECT count(*) FROM identifiers), "
            "(SELECT sum(hash(sid, person)) FROM identifiers), "
            "(SELECT count(*) FROM identity_rejections), "
            "(SELECT sum(hash(seq, link_id, person, other, sid, rule)) "
            " FROM identity_rejections), (SELECT count(DISTINCT person) FROM identifiers)"
        )[0]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--people", type=int, default=32_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    data_dir = args.data_dir.absolute()
    work = data_dir.parent
    print(f"load before: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} cores", flush=True)
    if not (data_dir / "touchpoints.duckdb").exists():
        with Touchpoints(load_settings(data_dir)) as tp:
            stored, seconds, _ = load(tp, args.people, args.seed, work / "demo-files")
            print(f"built: {stored:,} events in {seconds:.0f} s of storing", flush=True)
    copy, lake, result, tables = (work / n for n in ("copy", "lake", "result", "tables"))
    for path in (copy, lake, result, tables):
        shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(data_dir, copy)

    with Touchpoints(load_settings(copy)) as tp:
        events = int(tp.warehouse.scalar("SELECT count(*) FROM events"))
        started = time.perf_counter()
        tp.exporter.run(ExportQuery(to=str(lake)))
        exported = time.perf_counter() - started
        size = sum(p.stat().st_size for p in lake.rglob("*.parquet"))
        print(f"{events:,} events; export: {exported:.1f} s, {size / 1e6:.0f} MB", flush=True)
        on_duckdb = rebuild(tp.identity)
        duckdb_seconds = on_duckdb.seconds
        expected = persons_of(tp)
        print(
            f"rebuild on DuckDB: {duckdb_seconds:.1f} s ({on_duckdb.identifiers:,} identifiers, "
            f"{on_duckdb.persons:,} persons, {on_duckdb.iterations} steps, "
            f"{on_duckdb.replayed_components:,} components replayed; "
            + ", ".join(f"{k} {v:.1f} s" for k, v in on_duckdb.phases.items())
            + ")",
            flush=True,
        )
        model = tp.journeys.model
        refresh(tp.warehouse, model)
        tables.mkdir()
        for name in TABLES:  # the journey tables as Spark will read them
            tp.warehouse.run(
                f"COPY (SELECT * FROM {name}) TO '{tables / name}' (FORMAT parquet, "
                "PER_THREAD_OUTPUT true)"
            )
        as_of = tp.warehouse.scalar("SELECT CAST(max(ts) AS DATE) FROM journey_events")
        on_duckdb_answers = {}
        for label, analysis in analyses(as_of).items():
            served, answer = best(
                args.repeat, lambda a=analysis: a(duckdb_source(tp.warehouse, model))
            )
            computed, _ = best(args.repeat, lambda a=analysis: a(duckdb_source(tp.warehouse)))
            on_duckdb_answers[label] = answer
            print(
                f"{label} on DuckDB: {served:.2f} s from the kept facts, {computed:.2f} s "
                "computing them",
                flush=True,
            )

        from touchpoints.spark.rebuild import rebuild as rebuild_on_spark
        from touchpoints.spark.session import spark_session

        started = time.perf_counter()
        spark, _log = spark_session(args.master, {"spark.sql.shuffle.partitions": "8"})
        print(
            f"Spark {spark.version} {args.master}: session started in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        output = rebuild_on_spark(spark, str(lake), str(result))
        print(
            f"rebuild on Spark {args.master}: {output.seconds:.1f} s ({output.iterations} "
            f"steps, {output.replayed_components:,} components replayed) = "
            f"{output.seconds / duckdb_seconds:.1f} × DuckDB's",
            flush=True,
        )
        tp.warehouse.run("UPDATE identifiers SET person = sid")
        tp.warehouse.run("DELETE FROM identity_rejections")
        tp.identity.forget()
        loaded = load_persons(tp.identity, LoadQuery(result=str(result)))
        same = persons_of(tp) == expected
        print(f"loaded into DuckDB in {loaded.seconds:.1f} s; equal to DuckDB's rebuild: {same}")
        if not same:
            sys.exit("Spark's identity map differs from DuckDB's")

        from ibis import pyspark as ibis_pyspark

        for name in TABLES:
            frame = spark.read.parquet(str(tables / name))
            # DuckDB's naive UTC times arrive as TIMESTAMP_NTZ; the analyses expect instants
            # (the session's time zone is UTC, so the values stay).
            frame = frame.select(
                *[
                    frame[f.name].cast("timestamp").alias(f.name)
                    if f.dataType.typeName() == "timestamp_ntz"
                    else frame[f.name]
                    for f in frame.schema.fields
                ]
            )
            frame.createOrReplaceTempView(name)
        source = Source(ibis_pyspark.connect(spark))
        for label, analysis in analyses(as_of).items():
            analysis(source)  # warm-up: the first query on a table compiles and lists files
            seconds, answer = best(args.repeat, lambda a=analysis: a(source))
            agree = answer == on_duckdb_answers[label]
            print(f"{label} on Spark {args.master}: {seconds:.2f} s; same answer: {agree}")
            if not agree:
                sys.exit(f"{label}: Spark's answer differs from DuckDB's")
        spark.stop()
    print(f"load after: {os.getloadavg()[0]:.1f} (1 min)")


if __name__ == "__main__":
    main()
