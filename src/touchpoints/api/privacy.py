"""The data subject's rights and what honours them: access (export), erasure, the requests'
register, suppressions and retention.

The person is named in the body, never in the path: a key like ``email:anna@example.com``
in a URL ends up in proxies' and browsers' logs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from touchpoints.access.keys import ApiKey
from touchpoints.api.auth import allow, audited, require
from touchpoints.api.state import core
from touchpoints.privacy.results import Erasure, Lifted, PrivacyRequest, RequestList, RetentionRun
from touchpoints.privacy.service import PrivacyOverview

router = APIRouter(prefix="/v1/privacy", tags=["privacy"])
Officer = Annotated[ApiKey, Depends(require("privacy"))]
Admin = Annotated[ApiKey, Depends(require("admin"))]

_KEY = Field(
    min_length=1,
    max_length=1000,
    description="The person: any identifier as TYPE:VALUE (email:anna@example.com), or person:N",
)


RequestId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class ExportRequest(BaseModel):
    key: str = _KEY


class ErasureRequest(BaseModel):
    key: str = _KEY
    note: str | None = Field(
        default=None,
        max_length=500,
        description="Why or on whose request (a ticket number; no personal data)",
    )


class RejectFile(BaseModel):
    path: str = Field(min_length=1, max_length=4096, description="The reject file's absolute path")


@router.get("")
def overview(request: Request, _: Officer) -> PrivacyOverview:
    """Open and overdue requests, the latest ones, suppressions and the privacy settings."""
    return core(request).privacy.overview()


@router.post(
    "/exports",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "The archive"}},
)
def export(request: Request, key: Officer, body: ExportRequest) -> Response:
    """Everything about the person (GDPR Art. 15 and 20) as one ZIP archive: profile,
    consent, stages, and every stored row per table as JSON and CSV, with a README. The
    request is recorded; its id is in the ``X-Privacy-Request`` header."""
    done, archive = core(request).privacy.export(body.key, by=key.id)
    audited(request, key, "privacy.export", done.subject, f"request {done.id}")
    return Response(
        archive,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="touchpoints-export-{done.id}.zip"',
            "X-Privacy-Request": str(done.id),
        },
    )


@router.post("/erasures")
def erase(request: Request, key: Officer, body: ErasureRequest) -> Erasure:
    """Erase the person (GDPR Art. 17): every identifier, anonymous ones included, their
    events and everything derived from them in every table, the quarantine and the import
    reject files; the database file is rewritten so nothing is left in its free space.
    Their identifiers are suppressed (kept as keyed hashes): later events carrying one are
    dropped. Answers with counts, never the data."""
    erasure = core(request).privacy.erase(body.key, by=key.id, note=body.note)
    detail = f"request {erasure.request.id}, {erasure.identifiers} identifiers"
    audited(request, key, "privacy.erase", erasure.person, detail)
    return erasure


@router.get("/requests")
def requests(
    request: Request,
    _: Officer,
    status: Literal["received", "done", "refused"] | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> RequestList:
    """Access and erasure requests, newest first, with status, due time and what was done."""
    return core(request).privacy.request_list(status, limit)


@router.get("/requests/{request_id}")
def one_request(request: Request, _: Officer, request_id: RequestId) -> PrivacyRequest:
    return core(request).privacy.request(request_id)


@router.post("/requests/{request_id}/lift")
def lift(request: Request, key: Admin, request_id: RequestId) -> Lifted:
    """Accept again the events of the identifiers an erasure suppressed (admin only)."""
    lifted = core(request).privacy.lift(request_id, by=key.id)
    audited(
        request, key, "privacy.lift", None, f"request {request_id}, {lifted.lifted} identifiers"
    )
    return lifted


@router.post("/retention")
def retention(request: Request, key: Officer, dry_run: bool = False) -> RetentionRun:
    """Remove what is past its retention now (as the daily job does; admin only); with
    ``dry_run``, count it only (the privacy permission is enough)."""
    if not dry_run:
        allow(key, "admin")
    run = core(request).privacy.run_retention(dry_run=dry_run)
    if not dry_run:
        audited(request, key, "privacy.retention", None, f"{run.events} events")
    return run


@router.post("/reject-files", status_code=204)
def reject_file(request: Request, _: Admin, body: RejectFile) -> Response:
    """Register a file an import wrote rejected lines to (``touchpoints import`` does), so
    an erasure removes the lines that mention the person from it too."""
    core(request).privacy.reject_file(body.path)
    return Response(status_code=204)
