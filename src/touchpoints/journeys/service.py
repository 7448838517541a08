"""The journeys of one warehouse: what the API, the CLI and the pages call.

Queries are built with Ibis (imported on first use, so commands that need no analytics start
as fast as before) and run on the warehouse's DuckDB; the journey tables are brought up to
date with the identity map before each analysis.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from touchpoints.journeys.model import StageModel
from touchpoints.warehouse import Warehouse

if TYPE_CHECKING:
    from touchpoints.journeys.source import Source


class Journeys:
    def __init__(self, warehouse: Warehouse, model: StageModel) -> None:
        self.warehouse = warehouse
        self.model = model

    def source(self) -> Source:
        """The journey tables, caught up with the events the identity map has applied."""
        from touchpoints.journeys.source import duckdb_source, refresh

        refresh(self.warehouse)
        return duckdb_source(self.warehouse)

    def stages(self) -> list[dict[str, Any]]:
        """Per stage: persons in it now, and persons who ever entered it."""
        from touchpoints.journeys.stages import stage_distribution

        return [asdict(count) for count in stage_distribution(self.source(), self.model)]

    def stage_history(self, person: int) -> list[dict[str, Any]]:
        """The stages one person entered, in journey order."""
        from touchpoints.journeys.stages import stage_history

        return stage_history(self.source(), self.model, person)
