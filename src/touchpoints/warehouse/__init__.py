"""Storage: the only package that talks to the database."""

from touchpoints.warehouse.connection import (
    Warehouse,
    WarehouseError,
    WarehouseLocked,
    arrow_sql,
    registered,
    run_sql,
    utc_now,
)
from touchpoints.warehouse.events import AppendResult, EventFilter, EventReader, EventStore

__all__ = [
    "AppendResult",
    "EventFilter",
    "EventReader",
    "EventStore",
    "Warehouse",
    "WarehouseError",
    "WarehouseLocked",
    "arrow_sql",
    "registered",
    "run_sql",
    "utc_now",
]
