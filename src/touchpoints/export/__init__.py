"""Open tables: the warehouse written as Hive-partitioned Parquet for DuckDB, Spark and
other engines (``touchpoints export``); see :mod:`touchpoints.export.service`."""

from touchpoints.export.results import ExportQuery, ExportRun, ExportsReached, TableExported
from touchpoints.export.schedule import ExportJob
from touchpoints.export.service import Exporter

__all__ = ["ExportJob", "ExportQuery", "ExportRun", "Exporter", "ExportsReached", "TableExported"]
