"""Storage: the only package that talks to the database."""

from touchpoints.warehouse.connection import Warehouse, WarehouseError, WarehouseLocked, utc_now
from touchpoints.warehouse.events import AppendResult, EventFilter, EventReader, EventStore

__all__ = [
    "AppendResult",
    "EventFilter",
    "EventReader",
    "EventStore",
    "Warehouse",
    "WarehouseError",
    "WarehouseLocked",
    "utc_now",
]
