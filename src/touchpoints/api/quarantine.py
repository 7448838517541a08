"""Quarantined events: list, show, replay, delete. Admin only (items hold raw personal data)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from touchpoints.api.auth import require
from touchpoints.api.state import core
from touchpoints.errors import NotFound
from touchpoints.privacy.keys import ApiKey

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
) -> dict[str, Any]:
    quarantine = core(request).quarantine
    wanted = None if status == "all" else status
    return {
        "count": quarantine.count(wanted),
        "items": [item.as_dict() for item in quarantine.list(wanted, limit)],
    }


@router.get("/{item_id}")
def show_item(request: Request, _: Admin, item_id: int) -> dict[str, Any]:
    item = core(request).quarantine.get(item_id)
    if item is None:
        raise NotFound(f"no quarantined item {item_id}")
    return item.as_dict()


@router.post("/replay")
def replay(request: Request, _: Admin, body: ReplayRequest) -> dict[str, Any]:
    return asdict(core(request).replay_quarantine(body.ids))


@router.delete("/{item_id}")
def delete_item(request: Request, _: Admin, item_id: int) -> dict[str, Any]:
    if not core(request).quarantine.delete(item_id):
        raise NotFound(f"no quarantined item {item_id}")
    return {"deleted": item_id}
