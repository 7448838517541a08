"""Open tables: the warehouse exported as Hive-partitioned Parquet to a directory on the
server's machine (``touchpoints export --to DIR``). Admin only: the files hold every
person's data, and the server writes them where it is told."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from touchpoints.access.keys import ApiKey
from touchpoints.api.auth import audited, require
from touchpoints.api.state import core
from touchpoints.export import ExportQuery, ExportRun

router = APIRouter(prefix="/v1/export", tags=["export"])
Admin = Annotated[ApiKey, Depends(require("admin"))]


@router.post("")
def export(request: Request, key: Admin, body: ExportQuery) -> ExportRun:
    """Write what is new since the last export into ``to``: events, identifiers, identity
    links, the kept journey facts and consent choices, as Parquet partitioned by event
    date, with a manifest
    (``_manifest.json``). Running it again with nothing new writes nothing."""
    run = core(request).exporter.run(body)
    rows = sum(t.rows_written for t in run.tables)
    files = sum(t.files_written for t in run.tables)
    audited(request, key, "export.tables", None, f"{rows} rows in {files} files to {run.directory}")
    return run
