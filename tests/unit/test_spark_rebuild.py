"""The identity rebuild on Spark, from an export directory: equal to DuckDB's rebuild of the
same events, merge-rule conflicts, links and detached identifiers included; its result loaded
into the warehouse, and refused when it is not the rebuild of the warehouse as it is."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from touchpoints.core import Touchpoints
from touchpoints.errors import Conflict, InvalidRequest
from touchpoints.export import ExportQuery
from touchpoints.identity.identifiers import Identifier
from touchpoints.identity.outside import RESULT, LoadQuery, load_persons
from touchpoints.identity.rebuild import rebuild
from touchpoints.identity.resolver import LinkRequest

pytestmark = pytest.mark.spark


def send(tp: Touchpoints, messages: list[dict[str, Any]]) -> None:
    outcome = tp.judge({"batch": messages}, "batch", source="spark-test")
    assert not outcome.rejected, outcome.rejected
    tp.write_rows(outcome.rows)


def sid_of(tp: Touchpoints, id_type: str, value: str) -> int:
    return int(
        tp.warehouse.scalar(
            "SELECT sid FROM identifiers WHERE type = ? AND value = ?", [id_type, value]
        )
    )


def households(tp: Touchpoints) -> None:
    """Persons of every kind a rebuild meets: plain cross-device ones, a shared kiosk that two
    user ids signed in on (user_id's limit is 1: the rule bites), a family tablet detached
    by an operator, an accepted link, a link the limits refuse, and a link removed again."""
    messages: list[dict[str, Any]] = []
    for n in range(6):
        messages += [
            {"type": "page", "anonymousId": f"phone-{n}", "messageId": f"p{n}"},
            {"type": "identify", "anonymousId": f"phone-{n}", "userId": f"u{n}",
             "traits": {"email": f"p{n}@example.de"}, "messageId": f"i{n}"},
            {"type": "track", "event": "Order Completed", "anonymousId": f"laptop-{n}",
             "context": {"traits": {"email": f"p{n}@example.de"}}, "messageId": f"o{n}"},
        ]  # fmt: skip
    messages += [
        {"type": "page", "anonymousId": "stray", "messageId": "s1"},
        {"type": "page", "anonymousId": "kiosk", "messageId": "k1"},
        {"type": "identify", "anonymousId": "kiosk", "userId": "u1", "messageId": "k2"},
        {"type": "identify", "anonymousId": "kiosk", "userId": "u2", "messageId": "k3"},
        {"type": "identify", "anonymousId": "kiosk", "userId": "u3", "messageId": "k4"},
        {"type": "identify", "userId": "mother", "anonymousId": "tablet", "messageId": "t1"},
        {"type": "identify", "anonymousId": "tablet", "traits": {"email": "kid@x.de"},
         "messageId": "t2"},
        {"type": "track", "event": "Chat Started", "anonymousId": "kid-phone",
         "context": {"traits": {"email": "kid@x.de"}}, "messageId": "t3"},
    ]  # fmt: skip
    send(tp, messages)
    tp.identity.detach(sid_of(tp, "anonymous_id", "tablet"), note="family tablet")
    outcomes = tp.identity.add_links(
        [
            LinkRequest(Identifier("email", "p4@example.de"), Identifier("anonymous_id", "stray"),
                        "match", 0.95),
            LinkRequest(Identifier("user_id", "u0"), Identifier("anonymous_id", "kiosk"),
                        "match", 0.9),
            LinkRequest(Identifier("email", "p3@example.de"), Identifier("email", "kid@x.de"),
                        "match", 0.9),
        ]
    )  # fmt: skip
    assert [bool(o.refused) for o in outcomes] == [False, True, False]
    removed = tp.warehouse.scalar(
        "SELECT max(link_id) FROM identity_links WHERE value_b = 'kid@x.de'"
    )
    tp.identity.remove_link(int(removed))
    send(tp, [{"type": "identify", "anonymousId": "laptop-5", "userId": "u5", "messageId": "x"}])


def identity_map(tp: Touchpoints) -> dict[str, Any]:
    wh = tp.warehouse
    return {
        "identifiers": wh.fetchall(
            "SELECT sid, type, value, first_seq, person, detached FROM identifiers ORDER BY sid"
        ),
        "rejections": wh.fetchall(
            "SELECT seq, message_id, link_id, person, other, sid, rule FROM identity_rejections "
            "ORDER BY ALL"
        ),
        "event_identifiers": wh.fetchall("SELECT * FROM event_identifiers ORDER BY ALL"),
        "processed": tp.identity.processed_seq(),
    }


def spark_rebuild(spark: Any, lake: Path, result: Path) -> Any:
    from touchpoints.spark.rebuild import rebuild as rebuild_on_spark

    return rebuild_on_spark(spark, str(lake), str(result))


@pytest.fixture
def world(tp: Touchpoints, tmp_path: Path) -> Touchpoints:
    households(tp)
    tp.exporter.run(ExportQuery(to=str(tmp_path / "lake")))
    return tp


def test_the_spark_rebuild_equals_duckdbs_and_loads_into_the_warehouse(
    world: Touchpoints, tmp_path: Path, spark: Any
) -> None:
    lake, result = tmp_path / "lake", tmp_path / "result"
    output = spark_rebuild(spark, lake, result)
    on_duckdb = rebuild(world.identity)
    expected = identity_map(world)
    persons = {row[0]: row[4] for row in expected["identifiers"]}
    # The rules bite: the kiosk's component and the family tablet's are replayed.
    assert on_duckdb.replayed_components == output.replayed_components == 2
    assert len(expected["rejections"]) >= 3
    assert (output.identifiers, output.persons, output.iterations) == (
        on_duckdb.identifiers,
        on_duckdb.persons,
        on_duckdb.iterations,
    )
    got = spark.read.parquet(str(result / "persons")).collect()
    assert {row.sid: row.person for row in got} == persons
    # Persons scrambled (each identifier its own person, no rejections): the load restores
    # exactly what DuckDB's rebuild stored.
    world.warehouse.run("UPDATE identifiers SET person = sid")
    world.warehouse.run("DELETE FROM identity_rejections")
    world.identity.forget()
    loaded = load_persons(world.identity, LoadQuery(result=str(result)))
    assert identity_map(world) == expected
    assert loaded.changed == sum(1 for sid, person in persons.items() if sid != person)
    assert loaded.rejections == len(expected["rejections"])
    # Lookups see the loaded map at once.
    assert world.identity.lookup(Identifier("email", "p4@example.de")) == world.identity.lookup(
        Identifier("anonymous_id", "stray")
    )
    manifest = orjson.loads((result / RESULT).read_bytes())
    assert manifest["events_up_to"] == expected["processed"]
    assert manifest["limits"] == world.identity.limits


def test_a_result_that_is_not_the_warehouse_as_it_is_is_refused(
    world: Touchpoints, tmp_path: Path, spark: Any
) -> None:
    lake, result = tmp_path / "lake", tmp_path / "result"
    spark_rebuild(spark, lake, result)
    before = identity_map(world)

    def refused(kind: type[Exception], *words: str) -> None:
        with pytest.raises(kind) as caught:
            load_persons(world.identity, LoadQuery(result=str(result)))
        for word in words:
            assert word in str(caught.value)
        assert identity_map(world) == before  # nothing half-done

    # Other merge rules than the warehouse's.
    world.identity.limits = {**world.identity.limits, "email": 1}
    refused(Conflict, "other merge rules", "email ≤ 1")
    world.identity.limits = {**world.identity.limits, "email": 5}
    # A result file missing, or cut short: incomplete.
    persons = next((result / "persons").glob("*.parquet"))
    kept = persons.read_bytes()
    persons.write_bytes(kept[: len(kept) // 2])
    refused(InvalidRequest, "bytes", "incomplete")
    persons.unlink()
    refused(InvalidRequest, "missing", "incomplete")
    persons.write_bytes(kept)
    # A job that did not finish: no _result.json.
    shutil.move(result / RESULT, tmp_path / "kept.json")
    refused(InvalidRequest, "no finished result", RESULT)
    shutil.move(tmp_path / "kept.json", result / RESULT)
    # New events since the export: the result is older than the map.
    send(world, [{"type": "page", "anonymousId": "phone-9", "messageId": "late"}])
    before = identity_map(world)
    refused(Conflict, "older export")


def test_a_link_removed_since_the_export_makes_the_result_stale(
    world: Touchpoints, tmp_path: Path, spark: Any
) -> None:
    lake, result = tmp_path / "lake", tmp_path / "result"
    spark_rebuild(spark, lake, result)
    live = world.warehouse.scalar("SELECT min(link_id) FROM identity_links WHERE NOT removed")
    world.identity.remove_link(int(live))
    with pytest.raises(Conflict, match="links were added or removed since"):
        load_persons(world.identity, LoadQuery(result=str(result)))
    # Exported again and rebuilt: it loads.
    world.exporter.run(ExportQuery(to=str(lake)))
    spark_rebuild(spark, lake, result)
    rebuilt = load_persons(world.identity, LoadQuery(result=str(result)))
    assert rebuilt.persons == world.warehouse.scalar(
        "SELECT count(DISTINCT person) FROM identifiers"
    )


def test_an_export_without_the_event_identifiers_is_refused_before_spark_works(
    world: Touchpoints, tmp_path: Path, spark: Any
) -> None:
    lake = tmp_path / "lake"
    manifest = orjson.loads((lake / "_manifest.json").read_bytes())
    del manifest["tables"]["event_identifiers"]
    (lake / "_manifest.json").write_bytes(orjson.dumps(manifest))
    with pytest.raises(InvalidRequest, match="older touchpoints .no event_identifiers"):
        spark_rebuild(spark, lake, tmp_path / "result")
    with pytest.raises(InvalidRequest, match="is not a touchpoints export"):
        spark_rebuild(spark, tmp_path, tmp_path / "result")
    assert not (tmp_path / "result").exists()


def test_an_erasure_reaches_a_loaded_result_and_leaves_it_whole(
    world: Touchpoints, tmp_path: Path, spark: Any
) -> None:
    """A loaded result's persons files hold identifiers' values: erasing a person writes
    them again without the person's identifiers, the refused links that name them go too,
    and _result.json's sizes and counts match the files again (the load's own checks pass).
    A result directory deleted since is passed over."""
    import pyarrow.parquet as pq

    from touchpoints.identity import outside

    lake, result = tmp_path / "lake", tmp_path / "result"
    before = spark_rebuild(spark, lake, result)
    load_persons(world.identity, LoadQuery(result=str(result)))
    gone = tmp_path / "gone"
    shutil.copytree(result, gone)
    load_persons(world.identity, LoadQuery(result=str(gone)))
    shutil.rmtree(gone)
    theirs = {
        sid
        for (sid,) in world.warehouse.fetchall(
            "SELECT sid FROM identifiers WHERE person = (SELECT person FROM identifiers "
            "WHERE type = 'email' AND value = 'p0@example.de')"
        )
    }
    values = {"u0", "p0@example.de", "phone-0", "laptop-0"}
    rows = pq.read_table(result / "persons").to_pylist()
    assert values <= {row["value"] for row in rows}
    rejected = pq.read_table(result / "rejections").to_pylist()
    assert any({r["sid"], r["person"], r["other"]} & theirs for r in rejected)  # the kiosk's

    done = world.privacy.erase("email:p0@example.de")

    assert done.identity_result_files == 2 and done.identity_result_failures == []
    rows = pq.read_table(result / "persons").to_pylist()
    assert not values & {row["value"] for row in rows}
    assert not theirs & {row["sid"] for row in rows}
    assert len(rows) == before.identifiers - len(theirs)
    rejected = pq.read_table(result / "rejections").to_pylist()
    assert not any({r["sid"], r["person"], r["other"]} & theirs for r in rejected)
    output = outside.read_result(result)
    assert output.identifiers == len(rows) and output.rejections == len(rejected)
    assert output.persons == len({row["person"] for row in rows})
    # What the load reads (every listed file's size, the counts) agrees with the files.
    assert outside._table(
        result, output, outside.PERSONS, outside.PERSONS_SCHEMA, output.identifiers
    ).num_rows == len(rows)
    assert not list(result.rglob("*.erasing"))
