"""``touchpoints spark rebuild``: the identity map rebuilt on Spark from an export directory.

The same steps as :mod:`touchpoints.identity.rebuild` (whose SQL is in
:mod:`touchpoints.identity.store.rebuild`), as DataFrame steps:

1. Read the export's ``event_identifiers``, ``identifiers`` and ``identity_links``: the files
   its manifest lists (a consistent state, even while an export runs), and the identity rules
   the manifest notes. The identifiers keep the numbers the export gives them (numbered in
   first-seen order, as the rebuild numbers them).
2. Links: each event's anchor (pos 0) with each of its other identifiers, and each link in
   force; both directions.
3. Connected components by min-label propagation with pointer jumping, one step a loop turn,
   until no identifier changes label (the SQL rebuild's :func:`propagate_sql`).
4. Components where a merge rule bites (an identifier type over its limit, or a detached
   identifier: :func:`conflicts_sql`) are replayed event by event through
   :class:`~touchpoints.identity.graph.IdentityGraph`, the same code as the incremental path,
   one component per pandas group (``applyInPandas``); every other identifier's person is its
   component's label.
5. Write ``persons`` and ``rejections`` as Parquet, then ``_result.json`` last (see
   :mod:`touchpoints.identity.outside`): a result without it is never loaded.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd  # type: ignore[import-untyped]
from pydantic import ValidationError

from touchpoints.errors import InvalidRequest
from touchpoints.export.manifest import MANIFEST, Manifest, TableManifest
from touchpoints.identity.graph import IdentityGraph
from touchpoints.identity.outside import (
    PERSONS,
    REJECTIONS,
    RESULT,
    RebuildOutput,
    ResultFile,
)
from touchpoints.identity.resolver import replay_rows
from touchpoints.identity.store.identity_map import ReplayRow
from touchpoints.spark import files
from touchpoints.times import iso

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# What each exported table is read as (the columns the rebuild needs, in Spark's types).
_SCHEMAS = {
    "event_identifiers": "seq BIGINT, pos SMALLINT, sid BIGINT",
    "identifiers": "sid BIGINT, type STRING, value STRING, detached BOOLEAN",
    "identity_links": "link_id BIGINT, after_seq BIGINT, type_a STRING, value_a STRING, "
    "type_b STRING, value_b STRING, removed BOOLEAN",
}
# One row of the replay's input: an identifier of the component (kind 0) or one identifier
# of an event or one end of a link, in replay order (kind 1).
_REPLAY_IN = (
    "label BIGINT, kind INT, sid BIGINT, type STRING, value STRING, detached BOOLEAN, "
    "seq BIGINT, link_id BIGINT, pos INT"
)
# ... and of its output: an identifier's person (kind 0) or a refused link (kind 1).
_REPLAY_OUT = (
    "kind INT, sid BIGINT, person BIGINT, seq BIGINT, link_id BIGINT, other BIGINT, rule STRING"
)


def read_manifest(spark: SparkSession, source: str) -> Manifest:
    """The export's manifest, checked to hold what a rebuild needs."""
    path = f"{source}/{MANIFEST}"
    if not files.exists(spark, path):
        raise InvalidRequest(
            f"--from: {source} is not a touchpoints export (no {MANIFEST}); give the "
            "directory `touchpoints export --to` wrote"
        )
    try:
        manifest = Manifest.model_validate(orjson.loads(files.read_bytes(spark, path)))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise InvalidRequest(
            f"--from: {path} is not a touchpoints export manifest ({str(exc).splitlines()[0]})"
        ) from None
    missing = [name for name in _SCHEMAS if name not in manifest.tables]
    if missing or manifest.identity is None:
        raise InvalidRequest(
            f"--from: {source} was exported by an older touchpoints (no "
            f"{', '.join(missing) or 'identity rules'}); run `touchpoints export` into it again"
        )
    if manifest.identity.rules is None:
        raise InvalidRequest(
            f"--from: the identifiers exported to {source} were not all found by one set of "
            "identifier rules (they changed since); run `touchpoints identity rebuild`, then "
            "`touchpoints export`, then this again"
        )
    return manifest


def _read(spark: SparkSession, source: str, name: str, table: TableManifest) -> DataFrame:
    """The files of the table the manifest lists (none: an empty table)."""
    paths = [f"{source}/{entry.path}" for entry in table.files()]
    if not paths:
        return spark.createDataFrame([], _SCHEMAS[name])
    columns = [c.split()[0] for c in _SCHEMAS[name].split(", ")]
    frame = spark.read.option("basePath", f"{source}/{name}").parquet(*paths)
    return frame.select(*columns)


def rebuild(spark: SparkSession, source: str, target: str) -> RebuildOutput:
    """Rebuild the identity map of the export ``source`` into the result directory
    ``target`` (see the module)."""
    from pyspark.sql import functions as F

    started = time.perf_counter()
    manifest = read_manifest(spark, source)
    assert manifest.identity is not None  # read_manifest refuses an export without
    limits = dict(manifest.identity.limits)
    files.delete(spark, f"{target}/{RESULT}")  # the result of an earlier run is no more
    tables = {name: _read(spark, source, name, manifest.tables[name]) for name in _SCHEMAS}
    ei, ids, links = (
        tables["event_identifiers"].cache(),
        tables["identifiers"].cache(),
        tables["identity_links"],
    )
    link_sids = _link_sids(links, ids).cache()
    edges = _edges(ei, link_sids).localCheckpoint()
    cc = ids.select("sid", F.col("sid").alias("label")).localCheckpoint()
    iterations = 0
    while True:
        iterations += 1
        following = _propagate(cc, edges).localCheckpoint()
        changed = (
            following.alias("n")
            .join(cc.alias("c"), "sid")
            .where(F.col("n.label") != F.col("c.label"))
            .count()
        )
        cc = following
        if not changed:
            break
    conflicts = _conflicts(cc, ids, limits)
    replayed_components = conflicts.count()
    replayed = _replay(cc, conflicts, ids, ei, link_sids, limits).localCheckpoint()
    persons = (
        ids.join(cc, "sid")
        .join(
            replayed.where("kind = 0").select("sid", F.col("person").alias("replayed")),
            "sid",
            "left",
        )
        .select("sid", "type", "value", "detached", F.coalesce("replayed", "label").alias("person"))
    )
    rejections = replayed.where("kind = 1").select(
        "seq", "link_id", "person", "other", "sid", "rule"
    )
    persons.write.mode("overwrite").parquet(f"{target}/{PERSONS}")
    rejections.write.mode("overwrite").parquet(f"{target}/{REJECTIONS}")
    counted = spark.read.parquet(f"{target}/{PERSONS}").agg(
        F.count("*").alias("identifiers"), F.countDistinct("person").alias("persons")
    )
    identifiers, person_count = counted.first() or (0, 0)
    in_force, last_link = links.agg(
        F.count(F.when(~F.col("removed"), 1)), F.coalesce(F.max("link_id"), F.lit(0))
    ).first() or (0, 0)
    output = RebuildOutput(
        export=source,
        events_up_to=manifest.tables["events"].high_water_mark,
        rules=manifest.identity.rules,
        limits=limits,
        links_in_force=int(in_force),
        last_link_id=int(last_link),
        identifiers=int(identifiers),
        persons=int(person_count),
        rejections=spark.read.parquet(f"{target}/{REJECTIONS}").count(),
        iterations=iterations,
        replayed_components=replayed_components,
        engine=f"Spark {spark.version} {spark.sparkContext.master}",
        seconds=round(time.perf_counter() - started, 3),
        written_at=iso(datetime.now(UTC)),
        files={
            name: [
                ResultFile(path=f"{name}/{found.name}", bytes=found.bytes)
                for found in files.parquet_files(spark, f"{target}/{name}")
            ]
            for name in (PERSONS, REJECTIONS)
        },
    )
    # Last: the result is complete (see touchpoints.identity.outside).
    files.write_bytes(
        spark, f"{target}/{RESULT}", orjson.dumps(output.model_dump(), option=orjson.OPT_INDENT_2)
    )
    for frame in (ei, ids, link_sids):
        frame.unpersist()
    return output


def _link_sids(links: DataFrame, ids: DataFrame) -> DataFrame:
    """Links in force with the numbers of their two identifiers (the SQL's link_sids_sql)."""
    from pyspark.sql import functions as F

    a = ids.select(
        F.col("sid").alias("sid_a"), F.col("type").alias("type_a"), F.col("value").alias("value_a")
    )
    b = ids.select(
        F.col("sid").alias("sid_b"), F.col("type").alias("type_b"), F.col("value").alias("value_b")
    )
    return (
        links.where(~F.col("removed"))
        .join(a, ["type_a", "value_a"])
        .join(b, ["type_b", "value_b"])
        .select("link_id", "after_seq", "sid_a", "sid_b")
    )


def _edges(ei: DataFrame, link_sids: DataFrame) -> DataFrame:
    """Each event's anchor with its other identifiers, and each link in force; both
    directions (the SQL's links_sql)."""
    from pyspark.sql import functions as F

    anchors = ei.where("pos = 0").select("seq", F.col("sid").alias("src"))
    others = ei.where("pos > 0").select("seq", F.col("sid").alias("dst"))
    pairs = (
        anchors.join(others, "seq")
        .select("src", "dst")
        .union(link_sids.select(F.col("sid_a").alias("src"), F.col("sid_b").alias("dst")))
    )
    return pairs.union(
        pairs.select(F.col("dst").alias("src"), F.col("src").alias("dst"))
    ).distinct()


def _propagate(cc: DataFrame, edges: DataFrame) -> DataFrame:
    """One step: each identifier takes the smallest label among itself and its neighbours,
    then jumps to its label's label (the SQL's propagate_sql)."""
    from pyspark.sql import functions as F

    neighbours = (
        edges.join(cc.select(F.col("sid").alias("dst"), F.col("label").alias("near")), "dst")
        .groupBy("src")
        .agg(F.min("near").alias("near"))
    )
    spread = cc.join(neighbours, F.col("sid") == F.col("src"), "left").select(
        "sid", F.least("label", F.coalesce("near", "label")).alias("label")
    )
    jump = spread.select(F.col("sid").alias("at"), F.col("label").alias("onward"))
    return spread.join(jump, F.col("label") == F.col("at")).select(
        "sid", F.col("onward").alias("label")
    )


def _conflicts(cc: DataFrame, ids: DataFrame, limits: dict[str, int]) -> DataFrame:
    """Components where a limit would be broken or an identifier is detached (the SQL's
    conflicts_sql)."""
    from pyspark.sql import functions as F

    counts = [F.count(F.when(F.col("detached"), 1)).alias("detached")]
    bites = F.col("detached") > 0
    for n, (id_type, limit) in enumerate(sorted(limits.items())):
        counts.append(
            F.countDistinct(F.when(F.col("type") == id_type, F.col("sid"))).alias(f"t{n}")
        )
        bites = bites | (F.col(f"t{n}") > int(limit))
    return cc.join(ids, "sid").groupBy("label").agg(*counts).where(bites).select("label")


def _replay(
    cc: DataFrame,
    conflicts: DataFrame,
    ids: DataFrame,
    ei: DataFrame,
    link_sids: DataFrame,
    limits: dict[str, int],
) -> DataFrame:
    """The components where a rule bites, replayed one per group (see :func:`replay_group`)."""
    from pyspark.sql import functions as F

    members = cc.join(conflicts, "label").cache()
    null = F.lit(None)
    identifiers = members.join(ids, "sid").select(
        "label",
        F.lit(0).alias("kind"),
        "sid",
        "type",
        "value",
        "detached",
        null.cast("bigint").alias("seq"),
        null.cast("bigint").alias("link_id"),
        null.cast("int").alias("pos"),
    )
    events = ei.join(members, "sid").select("seq", "label").distinct()
    event_rows = ei.join(events, "seq").select(
        "label",
        F.lit(1).alias("kind"),
        "sid",
        null.cast("string").alias("type"),
        null.cast("string").alias("value"),
        null.cast("boolean").alias("detached"),
        "seq",
        F.lit(0).cast("bigint").alias("link_id"),
        F.col("pos").cast("int").alias("pos"),
    )
    ends = link_sids.join(members.withColumnRenamed("sid", "sid_a"), "sid_a")
    link_rows = [
        ends.select(
            "label",
            F.lit(1).alias("kind"),
            F.col(end).alias("sid"),
            null.cast("string").alias("type"),
            null.cast("string").alias("value"),
            null.cast("boolean").alias("detached"),
            F.col("after_seq").alias("seq"),
            "link_id",
            F.lit(pos).alias("pos"),
        )
        for pos, end in enumerate(("sid_a", "sid_b"))
    ]
    rows = identifiers.unionByName(event_rows).unionByName(link_rows[0]).unionByName(link_rows[1])

    def replay(group: pd.DataFrame) -> pd.DataFrame:
        return replay_group(group, limits)

    return rows.groupBy("label").applyInPandas(replay, _REPLAY_OUT)


def replay_group(group: pd.DataFrame, limits: dict[str, int]) -> pd.DataFrame:
    """One component replayed through :class:`IdentityGraph` as the incremental path applied
    it: each identifier's person, and the links the merge rules refused."""
    graph = IdentityGraph(limits)
    known = group[group["kind"] == 0]
    for sid, id_type, value, detached in known[["sid", "type", "value", "detached"]].itertuples(
        index=False
    ):
        graph.add_identifier(int(sid), str(id_type), str(value))
        if detached:
            graph.detach(int(sid))
    steps = group[group["kind"] == 1].sort_values(["seq", "link_id", "pos"])
    rejections = replay_rows(
        graph,
        (
            ReplayRow(int(seq), int(link_id), int(sid), None)
            for seq, link_id, sid in steps[["seq", "link_id", "sid"]].itertuples(index=False)
        ),
    )
    out: list[tuple[Any, ...]] = [
        (0, int(sid), graph.find(int(sid)), None, None, None, None) for sid in known["sid"]
    ]
    out += [
        (1, r.sid, r.person, r.seq, link_id, r.other, r.rule)
        for (_message, link_id), r in rejections
    ]
    return pd.DataFrame(
        out, columns=["kind", "sid", "person", "seq", "link_id", "other", "rule"]
    ).astype({"seq": "Int64", "link_id": "Int64", "other": "Int64"})
