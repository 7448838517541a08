"""The jobs as one call each: a session started (or spark-submit's taken), the job run, the
session stopped again when the job started it. ``touchpoints spark rebuild`` calls
:func:`run_rebuild`; on a cluster, ``spark-submit`` runs this module (see docs/scale.md):

    JOB=$(python -c 'import touchpoints.spark.job as j; print(j.__file__)')
    spark-submit --master yarn "$JOB" rebuild --from s3a://lake/tp --to s3a://lake/identity
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from touchpoints.errors import TouchpointsError
from touchpoints.identity.outside import RebuildOutput
from touchpoints.spark.rebuild import rebuild
from touchpoints.spark.session import spark_session


def run_rebuild(source: str, target: str, master: str | None = "local[*]") -> RebuildOutput:
    """Rebuild the identity map of the export ``source`` into ``target`` on Spark."""
    spark, log = spark_session(master)
    try:
        return rebuild(spark, source, target)
    finally:
        if log is not None:  # we started it; spark-submit stops its own
            spark.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="touchpoints.spark.job")
    jobs = parser.add_subparsers(dest="job", required=True)
    job = jobs.add_parser("rebuild", help="the identity map rebuilt from an export")
    job.add_argument("--from", dest="source", required=True, help="the export directory")
    job.add_argument("--to", dest="target", required=True, help="the result directory")
    args = parser.parse_args(argv)
    try:
        output = run_rebuild(args.source, args.target, master=None)
    except TouchpointsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{output.identifiers} identifiers → {output.persons} persons "
        f"({output.iterations} steps, {output.replayed_components} components replayed) "
        f"in {output.seconds:.1f} s; result: {args.target}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
