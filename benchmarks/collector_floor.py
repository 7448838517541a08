"""Where the collector's time goes per event, and the least any collector built as issue 15 asks
(validate, log the raw body, acknowledge; one process loads the logs) could spend here.

Measures, one server at a time on loopback, with ``wrk`` (as ``benchmarks/ingest.py``, the
same Lua scripts: single ``/v1/track`` events and ``/v1/batch`` requests of 100):

- ``bare``: the baseline of ``benchmarks/ingest.py`` (one uvicorn worker: parse the JSON with
  orjson, answer);
- ``logged``: the same route that also appends the raw body to a log file before it answers
  (``os.write`` of a small header and the body): the durable acknowledgement and nothing else;
- ``checked``: ``logged`` plus the least per-event check a precise 400 needs (each event an
  object, its type one of the six calls, a userId or anonymousId, a messageId of text);
- ``touchpoints serve --collectors 1``: the real collector process and the server that loads
  its log (the identity map kept current), each process's CPU taken apart.

For each run it reads the CPU seconds of every process, wrk's too (``getrusage`` of the
children), and divides them by the events taken (the requests answered 2xx): CPU µs an event
of wrk, of the collector and of the loader.

Then the loader's floor without Python: batches of the runs' shape as newline-delimited JSON loaded
into the real ``events`` table by one ``INSERT … SELECT`` over DuckDB's JSON functions on one
thread (the columns the normaliser makes, the channel by a CASE on the library; no
deduplication) and the identifiers of the events taken out by SQL (the least the identity map
needs): µs an event.

Last, the arithmetic: on these cores, what rate of batched events is the most that wrk, the
cheapest collector and the cheapest loader can sustain together, against the 0.75 × of the
baseline that issue 15 asks.

    .venv/bin/python benchmarks/collector_floor.py [--seconds 10] [--connections 128]
                                                   [--load-events 400000]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from ingest import (  # noqa: E402
    BASELINE_APP,
    LUA_BATCH,
    LUA_SINGLE,
    WrkResult,
    children_of,
    cpu_seconds,
    run_wrk,
    start_app,
    start_touchpoints,
    wait_quiet,
)

# The route that logs the raw body before it answers; with CHECK, it first checks each event
# (every event of a batch, as a precise 400 names each refused one).
_LOGGING_APP = textwrap.dedent(
    """
    import os, time
    import orjson
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    CHECK = CHECK_EVENTS
    LOG = os.open("raw.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    TYPES = frozenset(("track", "identify", "page", "screen", "group", "alias"))

    def refused(event, route_type):
        if not isinstance(event, dict):
            return True
        kind = event.get("type", route_type)
        if not isinstance(kind, str) or kind not in TYPES:
            return True
        if event.get("userId") is None and event.get("anonymousId") is None:
            return True
        return not isinstance(event.get("messageId", ""), str)

    def acceptable(body, path):
        if path == "/v1/batch":
            events, route_type = body.get("batch"), None
            if not isinstance(events, list):
                return False
        else:
            events, route_type = [body], "track"
        bad = [i for i, event in enumerate(events) if refused(event, route_type)]
        return not bad

    async def track(request):
        raw = await request.body()
        body = orjson.loads(raw)
        if not isinstance(body, dict):
            return Response(b'{"success":false}', status_code=400)
        if CHECK and not acceptable(body, request.scope["path"]):
            return Response(b'{"success":false}', status_code=400)
        os.write(LOG, b"%d %d\\n" % (time.time_ns() // 1000, len(raw)) + raw)
        return Response(b'{"success":true}', media_type="application/json")

    app = Starlette(routes=[Route("/v1/track", track, methods=["POST"]),
                            Route("/v1/batch", track, methods=["POST"])])
    """
)
LOGGED_APP = _LOGGING_APP.replace("CHECK_EVENTS", "False")
CHECKED_APP = _LOGGING_APP.replace("CHECK_EVENTS", "True")

APPS = {"bare": BASELINE_APP, "logged": LOGGED_APP, "checked": CHECKED_APP}


@dataclass
class Run:
    """One wrk run and the CPU each process spent on it, per event taken."""

    name: str
    kind: str
    result: WrkResult
    events: int  # the events of the requests answered 2xx
    wrk_us: float
    server_us: float  # the collector: the only process of a bare app
    loader_us: float = 0.0  # touchpoints' server, loading the collector's log

    @property
    def events_per_second(self) -> float:
        return self.events / self.result.seconds

    @property
    def total_us(self) -> float:
        return self.wrk_us + self.server_us + self.loader_us


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    name: str,
    kind: str,
    url: str,
    headers: list[str],
    args: argparse.Namespace,
    work: Path,
    collector: int,
    loader: int | None = None,
    loaded: Callable[[], None] | None = None,
) -> Run:
    """wrk against ``url``; the CPU of the ``collector`` process (and of the ``loader``,
    counted until it has loaded everything taken) per event taken."""
    lua = LUA_BATCH if kind == "batch" else LUA_SINGLE
    per_request = 100 if kind == "batch" else 1
    wrk_before, collector_before = _children_cpu(), cpu_seconds(collector)
    loader_before = cpu_seconds(loader) if loader is not None else 0.0
    result = run_wrk(url, lua, args, headers, work)
    wrk_cpu = _children_cpu() - wrk_before
    collector_cpu = cpu_seconds(collector) - collector_before
    if loaded is not None:
        loaded()
    loader_cpu = cpu_seconds(loader) - loader_before if loader is not None else 0.0
    events = (result.requests - result.non_2xx) * per_request
    if not events:
        sys.exit(f"{name} {kind}: nothing was taken")
    return Run(
        name,
        kind,
        result,
        events,
        wrk_cpu / events * 1e6,
        collector_cpu / events * 1e6,
        loader_cpu / events * 1e6,
    )


# The normaliser's columns from each event of a batch, by DuckDB's JSON functions: the least a
# vectorised loader does (no deduplication, no clock-skew correction, the channel by library
# only). Each event is parsed once into a struct (json_transform): 3.1 µs an event here, where
# 19 JSON paths on the event's text (each parsing it again) took 4.4, and read_json with the
# batch's structure declared 8.1 (2026-12-05). Of the 3.1, the insert itself is 1.8.
_STRUCTURE = orjson.dumps(
    {
        **{field: "VARCHAR" for field in ("type", "event", "name", "messageId", "sentAt")},
        **{field: "VARCHAR" for field in ("userId", "anonymousId", "previousId", "groupId")},
        **{field: "JSON" for field in ("properties", "traits", "context", "integrations")},
        "originalTimestamp": "VARCHAR",
    }
).decode()
_LOAD_SQL = """
INSERT INTO events
SELECT row_number() OVER () AS seq,
       s.messageId, (hash(s.messageId) >> 1)::BIGINT, s.type, s.event, s.name,
       s.userId, s.anonymousId, s.previousId, s.groupId,
       s.properties, s.traits, s.context, s.integrations,
       coalesce(try_cast(s.originalTimestamp AS TIMESTAMP), now()::TIMESTAMP),
       try_cast(s.originalTimestamp AS TIMESTAMP), try_cast(s.sentAt AS TIMESTAMP),
       now()::TIMESTAMP,
       CASE WHEN (s.context->'library'->>'name') LIKE 'analytics-%' THEN 'web' ELSE 'other' END,
       'floor', e
FROM (SELECT e, json_transform(e, '{structure}') AS s
      FROM (SELECT unnest(json_extract(json, '$.batch[*]')) AS e
            FROM read_json_objects('{path}', format = 'newline_delimited')))
"""
_IDENTIFIERS_SQL = """
CREATE TABLE floor_event_ids AS
SELECT seq, kind, value FROM (
    SELECT seq, 'user_id' AS kind, user_id AS value FROM events WHERE user_id IS NOT NULL
    UNION ALL
    SELECT seq, 'anonymous_id', anonymous_id FROM events WHERE anonymous_id IS NOT NULL
);
CREATE TABLE floor_identifiers AS SELECT DISTINCT kind, value FROM floor_event_ids;
"""


def load_floor(work: Path, events: int) -> tuple[float, float]:
    """µs an event: the batches loaded into the real events table by SQL on one thread, and
    the identifiers taken out of them."""
    from touchpoints.config import Settings
    from touchpoints.core import Touchpoints

    data_dir = work / "floor-data"
    Touchpoints.open(Settings(data_dir=data_dir)).close()
    body_file = work / "batches.ndjson"
    counter = 0
    with body_file.open("wb") as out:
        for _ in range(events // 100):
            batch = []
            for i in range(100):
                counter += 1
                batch.append(
                    {
                        "type": "track",
                        "event": "Configurator Opened",
                        "anonymousId": f"a{counter % 20000}",
                        "messageId": f"floor-{counter}",
                        "properties": {"model": "EV3", "step": i % 7},
                        "context": {"library": {"name": "analytics-python", "version": "2.3.4"}},
                    }
                )
            out.write(orjson.dumps({"batch": batch}) + b"\n")
    database = next(data_dir.glob("*.duckdb"))
    con = duckdb.connect(str(database))
    con.execute("SET threads = 1")
    started = time.perf_counter()
    path = str(body_file).replace("'", "''")
    con.execute(_LOAD_SQL.format(structure=_STRUCTURE, path=path))
    loaded = time.perf_counter() - started
    stored = con.execute("SELECT count(*) FROM events").fetchone()
    if stored is None or stored[0] != counter:
        sys.exit(f"the floor's load stored {stored} events, not {counter}")
    started = time.perf_counter()
    con.execute(_IDENTIFIERS_SQL)
    identifiers = time.perf_counter() - started
    con.close()
    return loaded / counter * 1e6, identifiers / counter * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="wrk's threads")
    parser.add_argument("--load-events", type=int, default=400_000)
    args = parser.parse_args()
    args.fsync = False
    if shutil.which("wrk") is None:
        sys.exit("this benchmark needs wrk: apt-get install wrk")
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="tp-floor-"))
    headers = ["Content-Type: application/json", "Authorization: Basic dHBfd3JpdGVfMDA6"]
    runs: list[Run] = []
    try:
        for name in APPS:
            process, url = start_app(work, name, APPS[name])
            try:
                for kind in ("single", "batch"):
                    wait_quiet([process.pid])
                    runs.append(measure(name, kind, url, headers, args, work, process.pid))
            finally:
                process.terminate()
                process.wait()
        running = start_touchpoints(work, 1, args)
        try:
            collector = children_of(running.server.pid)[0]
            for kind in ("single", "batch"):
                running.loaded()
                running.derived()
                wait_quiet(running.pids())
                runs.append(
                    measure(
                        "touchpoints",
                        kind,
                        running.target,
                        running.headers,
                        args,
                        work,
                        collector,
                        running.server.pid,
                        running.loaded,
                    )
                )
        finally:
            running.server.terminate()
            running.server.wait()
        load_us, identifiers_us = load_floor(work, args.load_events)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s on {cores} cores; "
        "CPU µs an event taken"
    )
    print(
        f"{'run':<22}{'events/s':>10}{'non-2xx':>9}{'wrk':>8}{'collector':>11}{'loader':>8}"
        f"{'total':>8}"
    )
    for run in runs:
        print(
            f"{run.name + ' ' + run.kind:<22}{run.events_per_second:>10,.0f}"
            f"{run.result.non_2xx:>9}{run.wrk_us:>8.2f}{run.server_us:>11.2f}"
            f"{run.loader_us:>8.2f}{run.total_us:>8.2f}"
        )
    print(
        f"the loader's floor in SQL (DuckDB, 1 thread, {args.load_events:,} events): "
        f"{load_us:.2f} µs an event to load, {identifiers_us:.2f} to take the identifiers out"
    )
    by = {(run.name, run.kind): run for run in runs}
    for kind in ("single", "batch"):
        bare, checked = by[("bare", kind)], by[("checked", kind)]
        # Sustained, every event taken is loaded: wrk, the collector and the loader share the
        # cores. The loader's floor is the SQL one; the collector's the checked route's.
        floor_us = checked.wrk_us + checked.server_us + load_us + identifiers_us
        floor_rate = cores / floor_us * 1e6
        target = 0.75 if kind == "batch" else 0.8
        print(
            f"{kind}: bare {bare.events_per_second:,.0f} events/s; logged "
            f"{by[('logged', kind)].events_per_second / bare.events_per_second:.2f} x, "
            f"checked {checked.events_per_second / bare.events_per_second:.2f} x, touchpoints "
            f"{by[('touchpoints', kind)].events_per_second / bare.events_per_second:.2f} x "
            f"(its loader {by[('touchpoints', kind)].loader_us:.2f} µs an event); at most "
            f"{floor_rate:,.0f} events/s sustained on {cores} cores with the checked collector "
            f"and the SQL loader = {floor_rate / bare.events_per_second:.2f} x "
            f"(asked: {target} x = {target * bare.events_per_second:,.0f})"
        )


if __name__ == "__main__":
    main()
