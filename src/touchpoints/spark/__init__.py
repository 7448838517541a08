"""Jobs that run on Apache Spark over an export directory (``touchpoints export``): the
identity rebuild (:mod:`.rebuild`) for a data team's cluster, or PySpark's local mode.

PySpark is an optional dependency (``pip install 'touchpoints[spark]'``); nothing here imports
it before a job starts, so the rest of touchpoints runs without it."""

from touchpoints.spark.session import SparkUnavailable, spark_session

__all__ = ["SparkUnavailable", "spark_session"]
