"""Quarantined events: list, show, replay, delete. Admin only (items hold raw personal data);
showing, replaying and deleting items are recorded in the audit log."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from touchpoints.access.keys import ApiKey
from touchpoints.api.auth import audited, require
from touchpoints.api.state import core
from touchpoints.collect.quarantine import Deleted, QuarantineItem, QuarantinePage, ReplayResult

router = APIRouter(prefix="/v1/quarantine", tags=["quarantine"])
Admin = Annotated[ApiKey, Depends(require("admin"))]


class ReplayRequest(BaseModel):
    ids: list[int] | None = None


@router.get("")
def list_items(
    request: Request,
    _: Admin,
    status: Literal["held", "replayed", "all"] = "held",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
) -> QuarantinePage:
    """Refused events and bodies with their reasons, oldest first."""
    return core(request).quarantine.page(None if status == "all" else status, limit)


@router.get("/{item_id}")
def show_item(request: Request, admin: Admin, item_id: int) -> QuarantineItem:
    """One item, with what was sent."""
    item = core(request).quarantine.item(item_id)
    audited(request, admin, "quarantine.read", f"item:{item_id}", durable=False)
    return item


@router.post("/replay")
def replay(request: Request, admin: Admin, body: ReplayRequest) -> ReplayResult:
    """Run held items (all, or ``ids``) through today's rules; what passes is stored."""
    result = core(request).replay_quarantine(body.ids)
    detail = f"replayed {result.replayed}, stored {result.events_stored}"
    audited(request, admin, "quarantine.replay", None, detail)
    return result


@router.delete("/{item_id}")
def delete_item(request: Request, admin: Admin, item_id: int) -> Deleted:
    """Delete an item for good (when it should never be stored)."""
    deleted = core(request).quarantine.remove(item_id)
    audited(request, admin, "quarantine.delete", f"item:{item_id}")
    return deleted
