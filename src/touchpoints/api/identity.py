"""Probabilistic matching, its review list and links (admin keys to change, read keys to look).

A thin face over :class:`touchpoints.identity.linking.Linker` and the resolver's links.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from touchpoints.api.auth import require
from touchpoints.errors import NotFound
from touchpoints.privacy.keys import ApiKey

router = APIRouter(tags=["identity"])
Reader = Annotated[ApiKey, Depends(require("read"))]
Admin = Annotated[ApiKey, Depends(require("admin"))]
Status = Literal["review", "linked", "refused", "accepted", "rejected", "unlinked", "all"]


@router.post("/v1/identity/match")
async def run_matching(request: Request, _: Admin) -> dict[str, Any]:
    """Score persons who share no identifier by their traits; link the likely pairs and put
    the borderline ones on the review list."""
    run = await run_in_threadpool(request.app.state.tp.linker.run)
    return run.as_dict()


@router.get("/v1/identity/reviews")
def list_pairs(
    request: Request,
    _: Reader,
    status: Status = "review",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Matched pairs, most probable first, with both persons' records side by side."""
    total, pairs = request.app.state.tp.linker.pairs(status, limit, offset)
    return {"count": total, "pairs": pairs}


class Decision(BaseModel):
    decision: Literal["accept", "reject"] = Field(description="Link the two persons, or not")
    note: str = Field(default="", max_length=500, description="Why (kept with the decision)")


@router.post("/v1/identity/reviews/{pair_id}")
def decide(request: Request, _: Admin, pair_id: int, body: Decision) -> dict[str, Any]:
    return request.app.state.tp.linker.decide(pair_id, body.decision == "accept", body.note)


@router.get("/v1/identity/summary")
def identity_summary(request: Request, _: Reader) -> dict[str, Any]:
    """Persons, identified (known by a user id, e-mail, phone, …) and anonymous (only
    cookies and device ids), and identifiers per type."""
    return request.app.state.tp.identity.summary()


@router.get("/v1/identity/links")
def list_links(
    request: Request,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    removed: bool = False,
) -> dict[str, Any]:
    """Links between identifiers that share no event, newest first."""
    total, links = request.app.state.tp.identity.links(limit, offset, removed)
    return {"count": total, "links": links}


class Unlink(BaseModel):
    note: str = Field(default="", max_length=500, description="Why (kept in the merge log)")


@router.post("/v1/identity/links/{link_id}/remove")
def remove_link(request: Request, _: Admin, link_id: int, body: Unlink) -> dict[str, Any]:
    """Unmerge a link: it no longer applies, and the persons it joined are recomputed."""
    try:
        persons = request.app.state.tp.identity.remove_link(link_id, body.note)
    except KeyError:
        raise NotFound(f"no link {link_id} in force") from None
    return {"removed": link_id, "persons": [f"person:{p}" for p in persons]}
