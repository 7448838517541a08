"""Open tables: the warehouse exported as Hive-partitioned Parquet, read back by DuckDB as it
is, incremental, idempotent, safe to stop at any point, and reached by erasure."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from touchpoints.core import Touchpoints
from touchpoints.errors import InvalidRequest
from touchpoints.export import ExportQuery, ExportRun
from touchpoints.export import files as export_files
from touchpoints.export import service as export_service
from touchpoints.export.manifest import MANIFEST


def send(tp: Touchpoints, messages: list[dict[str, Any]]) -> None:
    outcome = tp.judge({"batch": messages}, "batch", source="export-test")
    assert not outcome.rejected, outcome.rejected
    tp.write_rows(outcome.rows)


def visits(person: int, day: int, n: int = 3, signed_in: bool = True) -> list[dict[str, Any]]:
    """A visit of ``person`` on May ``day``: page views on their device, then a sign-in."""
    device = f"d{person}-{day}"
    out: list[dict[str, Any]] = [
        {
            "type": "page",
            "anonymousId": device,
            "name": "Home",
            "timestamp": f"2026-05-{day:02d}T{10 + i:02d}:00:00Z",
            "messageId": f"p{person}-{day}-{i}",
        }
        for i in range(n)
    ]
    if signed_in:
        out.append(
            {
                "type": "identify",
                "anonymousId": device,
                "userId": f"u{person}",
                "traits": {"email": f"person{person}@example.de"},
                "timestamp": f"2026-05-{day:02d}T23:00:00Z",
                "messageId": f"i{person}-{day}",
            }
        )
    return out


def export(tp: Touchpoints, directory: Path) -> ExportRun:
    return tp.exporter.run(ExportQuery(to=str(directory)))


def by_table(run: ExportRun) -> dict[str, Any]:
    return {t.table: t for t in run.tables}


def read(directory: Path, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
    """The table as a reader of the directory sees it: every Parquet file under it."""
    found = list((directory / table).rglob("*.parquet"))
    if not found:
        return []
    query = (
        f"SELECT {columns} FROM read_parquet('{directory / table}/**/*.parquet', "
        "hive_partitioning = true) ORDER BY ALL"
    )
    return duckdb.sql(query).fetchall()


def everything(directory: Path) -> str:
    """Every row of every Parquet file under ``directory``, as JSON text."""
    return "\n".join(
        orjson.dumps(duckdb.sql(f"SELECT * FROM '{path}'").fetchall(), default=str).decode()
        for path in directory.rglob("*.parquet")
    )


def tree(directory: Path) -> dict[str, int]:
    """Every file of the export with its inode: what a run wrote or left alone."""
    return {
        p.relative_to(directory).as_posix(): p.stat().st_ino
        for p in directory.rglob("*")
        if p.is_file()
    }


@pytest.fixture
def world(tp: Touchpoints) -> Touchpoints:
    for person in range(3):
        for day in (1, 2, 5):
            send(tp, visits(person, day))
    return tp


# -- reading it back ------------------------------------------------------------------------
def test_every_table_reads_back_in_duckdb_as_the_warehouse_holds_it(
    world: Touchpoints, tmp_path: Path
) -> None:
    out = tmp_path / "lake"
    run = export(world, out)
    wh = world.warehouse
    assert read(out, "events", "seq, message_id, type, user_id, anonymous_id, event_date") == (
        wh.fetchall(
            "SELECT seq, message_id, type, user_id, anonymous_id, CAST(timestamp AS DATE) "
            "FROM events ORDER BY ALL"
        )
    )
    # Times are UTC instants; the partition is the UTC date of the event's time.
    exported = duckdb.sql(
        f"SELECT seq, timezone('UTC', timestamp), properties, traits, context FROM "
        f"read_parquet('{out}/events/**/*.parquet') ORDER BY seq"
    ).fetchall()
    assert exported == wh.fetchall(
        "SELECT seq, timestamp, properties, traits, context FROM events ORDER BY seq"
    )
    assert sorted(p.name for p in (out / "events").iterdir()) == [
        "event_date=2026-05-01",
        "event_date=2026-05-02",
        "event_date=2026-05-05",
    ]
    facts = "seq, device, person, order_in_person, stage_index, channel, event"
    assert read(out, "journey_facts", facts) == wh.fetchall(
        f"SELECT {facts} FROM journey_facts ORDER BY ALL"
    )
    assert read(out, "identifiers") == wh.fetchall(
        "SELECT sid, type, value, first_seq, person, detached FROM identifiers ORDER BY ALL"
    )
    assert len(read(out, "identifiers")) == 3 * 3 + 3 * 2  # devices, user ids, e-mails
    assert read(out, "event_identifiers", "seq, pos, sid, event_date") == wh.fetchall(
        "SELECT ei.seq, ei.pos, ei.sid, CAST(e.timestamp AS DATE) FROM event_identifiers ei "
        "JOIN events e USING (seq) ORDER BY ALL"
    )
    counts = {t.table: (t.rows, t.rows_written) for t in run.tables}
    assert counts == {
        "events": (36, 36),
        "journey_facts": (36, 36),
        "identifiers": (15, 15),
        "event_identifiers": (54, 54),  # 27 page views: the device; 9 sign-ins: three each
        "identity_links": (0, 0),
        "consent_choices": (0, 0),
    }


def test_the_manifest_lists_every_file_with_its_rows_and_the_marks(
    world: Touchpoints, tmp_path: Path
) -> None:
    out = tmp_path / "lake"
    export(world, out)
    manifest = orjson.loads((out / MANIFEST).read_bytes())
    assert manifest["format"] == "touchpoints-parquet-export"
    assert manifest["format_version"] == 1
    assert manifest["warehouse_schema"] == world.warehouse.schema_version()
    events = manifest["tables"]["events"]
    assert events["partitioned_by"] == ["event_date"]
    assert events["high_water_mark"] == 36
    assert events["columns"]["timestamp"] == "TIMESTAMP WITH TIME ZONE"
    # The identity rules the exported map follows, for a rebuild from the files.
    assert manifest["identity"] == {
        "rules": world.identity.extractor.fingerprint(),
        "limits": world.identity.limits,
    }
    listed = {
        f["path"]: f["rows"]
        for table in manifest["tables"].values()
        for part in table["partitions"].values()
        for f in part["files"]
    }
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*.parquet")}
    assert set(listed) == on_disk
    for path, rows in listed.items():
        assert duckdb.sql(f"SELECT count(*) FROM '{out / path}'").fetchall() == [(rows,)]


def test_files_are_readable_by_their_owner_only(world: Touchpoints, tmp_path: Path) -> None:
    out = tmp_path / "lake"
    export(world, out)
    for path in out.rglob("*"):
        assert path.stat().st_mode & 0o077 == 0, path


# -- incremental and idempotent ---------------------------------------------------------------
def test_a_second_run_appends_only_the_new_events_and_leaves_the_files_written(
    world: Touchpoints, tmp_path: Path
) -> None:
    out = tmp_path / "lake"
    export(world, out)
    before = tree(out)
    send(world, visits(7, 6, signed_in=False))  # a new visitor, on a new day
    run = by_table(export(world, out))
    assert (run["events"].rows_written, run["events"].files_written) == (3, 1)
    assert run["events"].rows == 39
    assert run["events"].high_water_mark == 39
    after = tree(out)
    # The files of the events and facts written before are left as they are (identifiers
    # are one file, written again whole with the new device's).
    unchanged = {p: ino for p, ino in before.items() if p.startswith(("events/", "journey_"))}
    assert {path: after.get(path) for path in unchanged} == unchanged
    new_files = sorted(set(after) - set(before))
    assert [p for p in new_files if p.startswith("events/")] == [
        "events/event_date=2026-05-06/part-000002-0001-0.parquet"
    ]
    # Only the new day's facts and the identifier of the new device are written.
    assert (run["journey_facts"].rows_written, run["journey_facts"].files_written) == (3, 1)
    assert run["identifiers"].rows == 16
    assert len(read(out, "events")) == 39


def test_running_again_with_nothing_new_writes_nothing(world: Touchpoints, tmp_path: Path) -> None:
    out = tmp_path / "lake"
    export(world, out)
    manifest = (out / MANIFEST).read_bytes()
    before = tree(out)
    again = export(world, out)
    assert not again.changed
    assert all(t.rows_written == t.files_written == t.files_removed == 0 for t in again.tables)
    assert tree(out) == before
    assert (out / MANIFEST).read_bytes() == manifest


def test_a_merge_rewrites_only_the_partitions_whose_facts_it_changed(
    world: Touchpoints, tmp_path: Path
) -> None:
    out = tmp_path / "lake"
    send(world, visits(9, 5, signed_in=False))  # a visitor of May 5, not known yet
    export(world, out)
    before = tree(out)
    # The visitor signs in as person 0 at the end of May 5: their events join person 0's,
    # after all of that person's earlier ones; the facts of May 1 and 2 stay as they were.
    send(
        world,
        [
            {
                "type": "identify",
                "anonymousId": "d9-5",
                "userId": "u0",
                "messageId": "joined",
                "timestamp": "2026-05-05T23:30:00Z",
            }
        ],
    )
    run = by_table(export(world, out))
    assert run["journey_facts"].partitions_rewritten == 1
    after = tree(out)
    untouched = [p for p in before if p.startswith("journey_facts/") and "05-05" not in p]
    assert len(untouched) == 2
    assert all(after.get(p) == before[p] for p in untouched)
    assert not [p for p in before if p.startswith("journey_facts/") and "05-05" in p and p in after]
    assert read(out, "journey_facts", "seq, person, order_in_person") == world.warehouse.fetchall(
        "SELECT seq, person, order_in_person FROM journey_facts ORDER BY ALL"
    )


def test_a_link_is_exported_with_the_persons_it_joined(world: Touchpoints, tmp_path: Path) -> None:
    from touchpoints.identity.identifiers import Identifier
    from touchpoints.identity.resolver import LinkRequest

    out = tmp_path / "lake"
    send(world, visits(7, 6, signed_in=False))
    export(world, out)
    world.identity.add_links(
        [LinkRequest(Identifier("anonymous_id", "d7-6"), Identifier("user_id", "u2"), "review")]
    )
    run = by_table(export(world, out))
    assert (run["identity_links"].rows, run["events"].rows_written) == (1, 0)
    assert read(out, "identity_links", "type_a, value_a, type_b, value_b, source") == [
        ("anonymous_id", "d7-6", "user_id", "u2", "review")
    ]
    assert read(out, "identifiers", "sid, person") == world.warehouse.fetchall(
        "SELECT sid, person FROM identifiers ORDER BY ALL"
    )
    assert run["journey_facts"].partitions_rewritten >= 1  # May 6: the visitor is person 2


# What docs/export.md gives to leave out the persons who denied the analyses.
WITHOUT_OBJECTORS = """
WITH choices AS (
    SELECT f.person, c.granted, f.ts
    FROM read_parquet('{lake}/consent_choices/*.parquet') c
    JOIN read_parquet('{lake}/journey_facts/**/*.parquet', hive_partitioning = true) f
      USING (seq)
    WHERE c.category = 'analytics'
), objectors AS (
    SELECT person FROM choices GROUP BY person HAVING NOT arg_max(granted, ts)
)
SELECT DISTINCT person
FROM read_parquet('{lake}/journey_facts/**/*.parquet', hive_partitioning = true)
WHERE person NOT IN (SELECT person FROM objectors)
ORDER BY person
"""


def test_the_consent_choices_let_an_analysis_of_the_files_leave_out_objectors(
    world: Touchpoints, tmp_path: Path
) -> None:
    out = tmp_path / "lake"
    denied = {"consent": {"categoryPreferences": {"analytics": False}}}
    granted = {"consent": {"categoryPreferences": {"analytics": True}}}
    send(
        world,
        [
            {**visits(1, 5, 1, False)[0], "userId": "u1", "messageId": "no", "context": denied},
            {**visits(2, 2, 1, False)[0], "userId": "u2", "messageId": "n2", "context": denied},
            {**visits(2, 5, 1, False)[0], "userId": "u2", "messageId": "y2", "context": granted},
        ],
    )
    export(world, out)
    assert len(read(out, "consent_choices")) == 3
    persons = [p for (p,) in duckdb.sql(WITHOUT_OBJECTORS.format(lake=out)).fetchall()]
    person = world.profiles.resolve
    assert persons == sorted([person("user_id:u0"), person("user_id:u2")])  # u2 agreed again
    # The same persons the journey analyses of touchpoints leave out.
    source = world.journeys.source()
    assert source.withheld is not None
    withheld = source.arrow(source.withheld).column("person").to_pylist()
    assert withheld == [person("user_id:u1")]


def test_many_small_runs_are_compacted_into_one_file_per_partition(
    tp: Touchpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_service, "MAX_FILES", 3)
    out = tmp_path / "lake"
    for n in range(5):
        send(tp, [{**m, "messageId": f"{m['messageId']}-{n}"} for m in visits(0, 1, 1, False)])
        run = by_table(export(tp, out))
    day = out / "events" / "event_date=2026-05-01"
    assert len(list(day.iterdir())) == 2  # four files became one, then the fifth run's
    assert run["events"].rows == 5
    assert len(read(out, "events")) == 5


# -- stopped runs -------------------------------------------------------------------------------
class Stopped(BaseException):
    """A process killed half way (nothing after it runs, no exception handler sees it)."""


def test_a_run_stopped_half_way_leaves_nothing_half_written_and_the_next_resumes(
    world: Touchpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_service, "CHUNK_EVENTS", 10)
    out = tmp_path / "lake"
    placed = export_files.place
    calls = {"n": 0}

    def place_then_stop(directory: Path, staged: Path, relative: str) -> Any:
        calls["n"] += 1
        if calls["n"] == 7:  # two chunks of 10 seqs (3 days each) committed, in the third
            raise Stopped
        return placed(directory, staged, relative)

    monkeypatch.setattr(export_files, "place", place_then_stop)
    with pytest.raises(Stopped):
        export(world, out)
    monkeypatch.setattr(export_files, "place", placed)
    stopped_at = orjson.loads((out / MANIFEST).read_bytes())["tables"]["events"]
    assert stopped_at["high_water_mark"] == 20  # two chunks of seqs committed
    # What a killed process leaves besides: a file half written in its staging directory,
    # one renamed into place but not yet in the manifest, and the manifest's temporary file.
    first = next((out / "events").rglob("*.parquet"))
    half = out / ".staging-000002" / "events-0003" / "event_date=2026-05-05" / "part-0.parquet"
    half.parent.mkdir(parents=True)
    half.write_bytes(first.read_bytes()[:100])
    (out / "events" / "event_date=2026-05-05" / "part-000002-0003-0.parquet").write_bytes(
        first.read_bytes()
    )
    (out / (MANIFEST + ".tmp")).write_text("{")
    # A reader of the tables never meets the half-written file.
    assert len(read(out, "events")) >= 20

    run = export(world, out)
    assert run.leftovers_removed == 3
    assert by_table(run)["events"].rows_written == 36 - 20
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert read(out, "events", "seq") == world.warehouse.fetchall(
        "SELECT seq FROM events ORDER BY 1"
    )
    assert len(read(out, "journey_facts")) == 36
    assert not export(world, out).changed


def test_files_renamed_into_place_by_a_run_stopped_before_its_commit_are_removed(
    world: Touchpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "lake"
    export(world, out)
    send(world, visits(8, 9, signed_in=False))
    written = export_service._Run._commit

    def stop_before_commit(run: Any) -> None:
        raise Stopped

    monkeypatch.setattr(export_service._Run, "_commit", stop_before_commit)
    with pytest.raises(Stopped):
        export(world, out)
    monkeypatch.setattr(export_service._Run, "_commit", written)
    assert len(read(out, "events")) == 39  # the new file is in place, the manifest not yet
    run = by_table(export(world, out))
    assert run["events"].rows_written == 3
    assert len(read(out, "events")) == 39  # not 42: the uncommitted file went first


# -- where it cannot go -------------------------------------------------------------------------
def unwritable(tmp_path: Path) -> Path:
    """A directory this process may not write: read-only by its mode, or, for root (whom modes
    do not stop), under /sys."""
    if os.geteuid() == 0:
        return Path("/sys/touchpoints-export")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    return locked / "lake"


def test_a_directory_that_cannot_be_written_is_refused_plainly(
    world: Touchpoints, tmp_path: Path
) -> None:
    target = unwritable(tmp_path)
    with pytest.raises(InvalidRequest) as refused:
        export(world, target)
    assert str(refused.value).startswith(f"cannot write to {target}")


def test_a_directory_of_other_files_and_a_relative_path_are_refused(
    world: Touchpoints, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(InvalidRequest, match="holds other files .notes.txt. and no touchpoints"):
        export(world, other)
    assert (other / "notes.txt").read_text() == "mine"
    with pytest.raises(InvalidRequest, match="give an absolute path"):
        world.exporter.run(ExportQuery(to="lake"))
    (tmp_path / "a-file").write_text("")
    with pytest.raises(InvalidRequest, match="is a file, not a directory"):
        export(world, tmp_path / "a-file")


def test_a_manifest_that_cannot_be_read_is_refused(world: Touchpoints, tmp_path: Path) -> None:
    out = tmp_path / "lake"
    export(world, out)
    (out / MANIFEST).write_text("{not json")
    with pytest.raises(InvalidRequest, match="is not a touchpoints export manifest"):
        export(world, out)
    assert list((out / "events").rglob("*.parquet"))  # nothing deleted on a guess


# -- erasure and retention reach the export -----------------------------------------------------
def test_an_erasure_writes_the_exported_files_again_without_the_person(
    world: Touchpoints, tmp_path: Path
) -> None:
    out = tmp_path / "lake"
    export(world, out)
    traces = ("person1@example.de", "d1-1", '"u1"')
    assert any(trace in everything(out) for trace in traces)
    erasure = world.privacy.erase("user_id:u1")
    assert erasure.export_files > 0
    assert erasure.export_failures == []
    # Every file the directory holds, read whole (the files are compressed: their bytes
    # would not show a value either way).
    found = everything(out)
    assert [trace for trace in traces if trace in found] == []
    assert len(read(out, "events")) == 24
    assert read(out, "events", "seq") == world.warehouse.fetchall(
        "SELECT seq FROM events ORDER BY 1"
    )
    assert len(read(out, "identifiers")) == 10
    assert not export(world, out).changed  # already in step


def test_an_erasure_reports_an_export_directory_it_could_not_reach(
    world: Touchpoints, tmp_path: Path
) -> None:
    out = tmp_path / "lake"
    export(world, out)
    (out / MANIFEST).write_text("{not json")
    erasure = world.privacy.erase("user_id:u1")
    assert erasure.removed["events"] == 12  # the erasure itself is done
    (failure,) = erasure.export_failures
    assert failure.startswith(f"{out}: ")


def test_retention_reaches_the_export(world: Touchpoints, tmp_path: Path) -> None:
    from datetime import datetime

    from touchpoints.config import RetentionRule

    out = tmp_path / "lake"
    export(world, out)
    world.privacy.retention.rules = [RetentionRule(type="page", days=30)]
    run = world.privacy.retention.run(now=datetime(2026, 6, 3))  # May 1 and 2 are past
    assert run.events == 18
    assert run.export_files > 0
    assert read(out, "events", "DISTINCT event_date::VARCHAR, type") == [
        ("2026-05-01", "identify"),
        ("2026-05-02", "identify"),
        ("2026-05-05", "identify"),
        ("2026-05-05", "page"),
    ]


# -- Spark reads it as it is --------------------------------------------------------------------
@pytest.mark.spark
def test_spark_reads_every_table_as_the_warehouse_holds_it(
    world: Touchpoints, tmp_path: Path, spark: Any
) -> None:
    out = tmp_path / "lake"
    export(world, out)
    send(world, visits(7, 6, signed_in=False))
    export(world, out)  # two runs: files of both are one table to Spark
    wh = world.warehouse

    events = spark.read.parquet(str(out / "events"))
    assert dict(events.dtypes)["event_date"] == "date"  # found from the directories
    assert dict(events.dtypes)["timestamp"] == "timestamp"
    rows = sorted(
        (r.seq, r.message_id, r.user_id, r.anonymous_id, r.timestamp, r.event_date)
        for r in events.collect()
    )
    assert rows == wh.fetchall(
        "SELECT seq, message_id, user_id, anonymous_id, timestamp, CAST(timestamp AS DATE) "
        "FROM events ORDER BY seq"
    )
    per_day = {
        r.event_date.isoformat(): r[1] for r in events.groupBy("event_date").count().collect()
    }
    assert per_day == {"2026-05-01": 12, "2026-05-02": 12, "2026-05-05": 12, "2026-05-06": 3}

    facts = spark.read.parquet(str(out / "journey_facts"))
    columns = "seq, device, person, order_in_person, stage_index, channel, event"
    assert sorted(tuple(r) for r in facts.select(*columns.split(", ")).collect()) == wh.fetchall(
        f"SELECT {columns} FROM journey_facts ORDER BY ALL"
    )
    identifiers = spark.read.parquet(str(out / "identifiers"))
    assert sorted(tuple(r) for r in identifiers.collect()) == wh.fetchall(
        "SELECT sid, type, value, first_seq, person, detached FROM identifiers ORDER BY ALL"
    )


# -- the API and the server's schedule ----------------------------------------------------------
def test_the_api_exports_for_an_admin_only_and_records_it(tmp_path: Path) -> None:
    from conftest import start_app

    server = start_app(tmp_path / "data")
    try:
        out = tmp_path / "lake"
        body = {"batch": visits(0, 1)}
        with server.client(server.write_key) as client:
            assert client.post("/v1/batch", json=body).status_code == 200
        server.wait_idle()
        with server.client() as reader:
            refused = reader.post("/v1/export", json={"to": str(out)})
        assert refused.status_code == 403
        assert not out.exists()
        admin = server.admin_key()
        with server.client(admin) as client:
            answer = client.post("/v1/export", json={"to": str(out)})
            assert answer.status_code == 200, answer.text
            run = ExportRun.model_validate_json(answer.content)
            assert by_table(run)["events"].rows_written == 4
            bad = client.post("/v1/export", json={"to": "relative/lake"})
            assert bad.status_code == 422
            assert bad.json() == {"detail": "to: give an absolute path, not 'relative/lake'"}
            audit = client.get("/v1/audit", params={"action": "export.tables"}).json()
        (entry,) = audit["lines"]
        assert entry["detail"] == f"17 rows in 4 files to {out}"  # events, facts, identifiers,
        # event identifiers
    finally:
        server.stop()


def test_a_server_with_an_export_dir_exports_on_a_schedule(tmp_path: Path) -> None:
    from touchpoints.config import load_settings

    settings = load_settings(tmp_path / "data", export_dir="lake", export_interval_minutes=5)
    with Touchpoints.open(settings) as tp:
        send(tp, visits(0, 1))
        job = tp.export_job()
        assert job is not None and job.interval == 300
        job.first = 0.05
        job.start()
        try:
            for _ in range(200):
                if job.runs:
                    break
                time.sleep(0.05)
        finally:
            job.stop()
        assert job.runs == 1
        lake = tmp_path / "data" / "lake"  # relative: inside the data directory
        assert len(read(lake, "events")) == 4
        # An erasure reaches it (it is the server's export_dir, and was exported to).
        assert tp.privacy.erase("user_id:u0").export_files >= 1
        assert read(lake, "events") == []
    with Touchpoints.open(load_settings(tmp_path / "other")) as plain:
        assert plain.export_job() is None
