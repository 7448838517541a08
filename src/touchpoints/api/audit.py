"""The audit log (the ``audit`` permission: privacy officers' and admins'): its lines,
filtered, and a check of its hash chain. Reading it is recorded too (``audit.read``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from touchpoints.access.audit import AuditCheck, AuditPage, operator_names, parse_anchor
from touchpoints.access.keys import ApiKey
from touchpoints.api.auth import audited, require
from touchpoints.api.state import core
from touchpoints.times import naive_utc

router = APIRouter(prefix="/v1/audit", tags=["audit"])
Auditor = Annotated[ApiKey, Depends(require("audit"))]


@router.get("")
def list_lines(
    request: Request,
    auditor: Auditor,
    actor: Annotated[str | None, Query(max_length=80, description="A key or user id")] = None,
    action: Annotated[
        str | None, Query(max_length=80, description="profile.read; user. for all of users")
    ] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601, UTC when no zone")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
    before: Annotated[int | None, Query(ge=1, description="The 'next' of the page before")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> AuditPage:
    """Lines matching the filters, newest first."""
    page = core(request).audit.page(
        actor=actor,
        action=action,
        since=naive_utc(since) if since else None,
        until=naive_utc(until) if until else None,
        before=before,
        limit=limit,
    )
    audited(request, auditor, "audit.read", None, f"{len(page.lines)} lines", durable=False)
    tp = core(request)
    return page.model_copy(update={"names": operator_names(page, tp.users, tp.keys)})


@router.get("/verify")
def verify(
    request: Request,
    auditor: Auditor,
    anchor: Annotated[
        str | None, Query(max_length=100, description="SEQ:HASH of a head kept elsewhere")
    ] = None,
) -> AuditCheck:
    """Walk the hash chain: whether every line is unchanged and none is missing, and if not,
    the first line that does not fit and why."""
    check = core(request).audit.verify(parse_anchor(anchor) if anchor else None)
    detail = "intact" if check.ok else f"broken at line {check.first_broken}"
    audited(request, auditor, "audit.verify", None, detail, durable=False)
    return check
