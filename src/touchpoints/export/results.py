"""The export's question and answers, as the API documents them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from touchpoints.answers import Answer


class ExportQuery(BaseModel):
    to: str = Field(
        min_length=1,
        max_length=4096,
        description="The export directory, an absolute path on the server's machine",
    )


class TableExported(Answer):
    table: str
    rows: int = Field(description="Rows the export holds now")
    rows_written: int = Field(description="Rows written by this run")
    files_written: int
    files_removed: int = Field(description="Files replaced or no longer needed")
    partitions_rewritten: int = Field(
        description="Partitions written again whole: rows gone (erasure, retention), rows "
        "changed (a merge moves events to another person), or too many small files"
    )
    high_water_mark: int = Field(description="The highest event seq the table is written up to")


class ExportRun(Answer):
    directory: str
    manifest: str = Field(description="The manifest: every file, its rows and the marks")
    tables: list[TableExported]
    leftovers_removed: int = Field(
        description="Files a stopped run had left (staging, or not in the manifest), removed"
    )
    seconds: float

    @property
    def changed(self) -> bool:
        return any(t.files_written or t.files_removed for t in self.tables)


class ExportsReached(Answer):
    """What an erasure or retention did to the export directories touchpoints wrote."""

    directories: int = Field(description="Export directories brought in step")
    files_changed: int = Field(
        description="Parquet files written again without the rows, or deleted (a partition "
        "that held only them)"
    )
    failures: list[str] = Field(
        default_factory=list, description="Directories that could not be, and why"
    )
