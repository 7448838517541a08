"""spark: jobs for what must run on all the data, on Spark, over an export directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from touchpoints.cli.base import app, fail, out
from touchpoints.errors import TouchpointsError

spark_app = typer.Typer(
    help="Jobs on Apache Spark over an export directory (touchpoints export): run here with "
    "PySpark's local mode, or on a cluster with spark-submit (docs/scale.md).",
    no_args_is_help=True,
)
app.add_typer(spark_app, name="spark")


def _location(given: str) -> str:
    """A path Spark reads as given: a URL (hdfs://, s3a://) as it is, a local path made
    absolute."""
    return given if "://" in given else str(Path(given).absolute())


@spark_app.command("rebuild")
def spark_rebuild(
    source: Annotated[
        str,
        typer.Option(
            "--from", help="The export directory (touchpoints export --to), a path or a URL"
        ),
    ],
    target: Annotated[
        str,
        typer.Option(
            "--to",
            help="The result directory (persons, rejections, _result.json); load it with "
            "touchpoints identity load",
        ),
    ],
    master: Annotated[
        str, typer.Option("--master", help="Spark's master: local[N], spark://HOST:PORT, yarn")
    ] = "local[*]",
) -> None:
    """Rebuild the identity map from an export on Spark (the same steps and merge rules as
    touchpoints identity rebuild)."""
    from touchpoints.spark.job import run_rebuild

    try:
        result = run_rebuild(_location(source), _location(target), master)
    except TouchpointsError as exc:
        raise fail(str(exc)) from None
    out.print(
        f"{result.identifiers:,} identifiers → {result.persons:,} persons "
        f"({result.iterations} propagation steps, {result.replayed_components:,} components "
        f"replayed under the merge rules, {result.rejections:,} links refused) on "
        f"{result.engine} in {result.seconds:.1f} s",
        highlight=False,
    )
    out.print(
        f"result: {target} (events up to seq {result.events_up_to:,}); load it with "
        f"touchpoints identity load {target}",
        highlight=False,
    )
