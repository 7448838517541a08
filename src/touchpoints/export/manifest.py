"""The manifest of an export directory (``_manifest.json``): what has been written, so that
the next run writes only what is new, and readers can find a consistent set of files.

It is the export's commit point. A Parquet file becomes part of the export when a manifest
that lists it has been renamed into place; a file on disk that the manifest does not list is
the leftover of a run that was stopped, and the next run deletes it before doing anything
else. The name starts with ``_``, so Spark and Hive skip it when they list a table's files.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
from pydantic import BaseModel, Field, ValidationError

from touchpoints.errors import InvalidRequest

MANIFEST = "_manifest.json"
FORMAT = "touchpoints-parquet-export"
FORMAT_VERSION = 1  # raised when the layout or the meaning of a column changes


class FileEntry(BaseModel):
    path: str = Field(description="Relative to the export directory")
    rows: int
    bytes: int


class Partition(BaseModel):
    """One directory of a table (``event_date=2026-05-01``), or the whole of an unpartitioned
    table (key ``""``)."""

    rows: int = 0
    fingerprint: str | None = Field(
        default=None,
        description="Of a mirrored table: a sum of row hashes, to tell whether it changed",
    )
    files: list[FileEntry] = Field(default_factory=list)


class TableManifest(BaseModel):
    partitioned_by: list[str] = Field(default_factory=list)
    columns: dict[str, str] = Field(default_factory=dict, description="Name → DuckDB type")
    high_water_mark: int = Field(
        default=0, description="The highest event seq the table has been written up to"
    )
    partitions: dict[str, Partition] = Field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.partitions.values())

    def files(self) -> list[FileEntry]:
        return [f for p in self.partitions.values() for f in p.files]


class IdentityRules(BaseModel):
    """What an identity rebuild from the export needs besides the tables, and what its result
    must be loaded under (``touchpoints spark rebuild``, ``touchpoints identity load``)."""

    rules: str | None = Field(
        default=None,
        description="The fingerprint of the identifier rules that found the exported event "
        "identifiers (None: not one set of rules; rebuild in touchpoints first)",
    )
    limits: dict[str, int] = Field(
        default_factory=dict,
        description="The merge rules: at most this many identifiers of a type in one person",
    )


class Manifest(BaseModel):
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    warehouse_schema: int = 0
    written_by: str = ""
    updated_at: str = ""
    runs: int = Field(default=0, description="The number of the last run that wrote something")
    tables: dict[str, TableManifest] = Field(default_factory=dict)
    identity: IdentityRules | None = Field(
        default=None, description="The identity rules the exported identity map follows"
    )

    def listed(self) -> set[str]:
        """Every file the export holds, relative to its directory."""
        return {f.path for table in self.tables.values() for f in table.files()}


def read_manifest(directory: Path) -> Manifest | None:
    """The directory's manifest, None when it has none; one that cannot be read is refused
    with what to do (a manifest is never guessed at: it decides what is deleted)."""
    path = directory / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        manifest = Manifest.model_validate(orjson.loads(data))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise InvalidRequest(
            f"{path} is not a touchpoints export manifest ({str(exc).splitlines()[0]}); "
            "export into a new directory, or move this one aside"
        ) from None
    if manifest.format != FORMAT:
        raise InvalidRequest(f"{path} is not a touchpoints export manifest ({manifest.format})")
    if manifest.format_version > FORMAT_VERSION:
        raise InvalidRequest(
            f"{path} was written by a newer touchpoints (export format "
            f"{manifest.format_version}, this one writes {FORMAT_VERSION}); upgrade touchpoints"
        )
    return manifest


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Replace the manifest at once: written beside it, flushed to disk, renamed over it."""
    path = directory / MANIFEST
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(orjson.dumps(manifest.model_dump(), option=orjson.OPT_INDENT_2))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
