"""The identity map: its summary (``analytics``), links and the review list (``profiles``:
they show identifiers and traits), and its changes (``admin``): unmerges, link removals,
probabilistic matching, review decisions and rebuilds, each recorded in the audit log. A thin
face over :class:`touchpoints.identity.resolver.IdentityResolver` and
:class:`touchpoints.identity.linking.Linker`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from touchpoints.access.audit import listed
from touchpoints.access.keys import ApiKey
from touchpoints.api.auth import audited, require
from touchpoints.api.state import core
from touchpoints.identity.outside import LoadQuery, PersonsLoaded, load_persons
from touchpoints.identity.results import (
    IdentitySummary,
    LinkPage,
    MatchedPair,
    MatchRun,
    PairPage,
    RebuildResult,
    Unlinked,
    Unmerged,
)

router = APIRouter(tags=["identity"])
Analytics = Annotated[ApiKey, Depends(require("analytics"))]
Reader = Annotated[ApiKey, Depends(require("profiles"))]
Admin = Annotated[ApiKey, Depends(require("admin"))]
Status = Literal["review", "linked", "refused", "accepted", "rejected", "unlinked", "all"]
# Larger offsets are no page anyone reaches; past 2**63 they would overflow the database.
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]
Note = Field(default="", max_length=500, description="Why (kept in the merge log)")


@router.get("/v1/identity/summary")
def identity_summary(request: Request, _: Analytics) -> IdentitySummary:
    """Persons, identified (known by a user id, e-mail, phone, …) and anonymous (only
    cookies and device ids), and identifiers per type."""
    return core(request).identity.summary()


class UnmergeRequest(BaseModel):
    identifier: str = Field(description="TYPE:VALUE of the identifier to detach")
    note: str = Note


@router.post("/v1/identity/unmerge")
def unmerge(request: Request, admin: Admin, body: UnmergeRequest) -> Unmerged:
    """Detach an identifier: it is never linked again, and the person it joined splits."""
    done = core(request).identity.unmerge(body.identifier, body.note)
    audited(request, admin, "identity.unmerge", done.person, unmerge_detail(done))
    return done


def unmerge_detail(done: Unmerged) -> str:
    """The audit line's detail of an unmerge: the identifier's type, never its value."""
    kind = done.detached.partition(":")[0]
    return f"detached an identifier of type {kind}; now {listed(done.persons)}"


@router.get("/v1/identity/links")
def list_links(
    request: Request,
    reader: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Offset = 0,
    removed: bool = False,
) -> LinkPage:
    """Links between identifiers that share no event, newest first."""
    page = core(request).identity.links(limit, offset, removed)
    detail = f"{len(page.links)} links"
    audited(request, reader, "identity.read_links", None, detail, durable=False)
    return page


class Unlink(BaseModel):
    note: str = Note


@router.post("/v1/identity/links/{link_id}/remove")
def remove_link(request: Request, admin: Admin, link_id: int, body: Unlink) -> Unlinked:
    """Unmerge a link: it no longer applies, and the persons it joined are recomputed."""
    done = core(request).identity.unlink(link_id, body.note)
    audited(request, admin, "identity.unlink", f"link:{link_id}", f"now {listed(done.persons)}")
    return done


@router.post("/v1/identity/match")
async def run_matching(request: Request, admin: Admin) -> MatchRun:
    """Score persons who share no identifier by their traits; link the likely pairs and put
    the borderline ones on the review list."""
    run = await run_in_threadpool(core(request).linker.run)
    detail = f"linked {run.linked}, to review {run.review}, refused {run.refused}"
    await run_in_threadpool(audited, request, admin, "identity.match", f"run:{run.run_id}", detail)
    return run


@router.get("/v1/identity/reviews")
def list_pairs(
    request: Request,
    reader: Reader,
    status: Status = "review",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Offset = 0,
) -> PairPage:
    """Matched pairs, most probable first, with both persons' records side by side."""
    page = core(request).linker.pairs(status, limit, offset)
    detail = f"{len(page.pairs)} pairs, {status}"
    audited(request, reader, "identity.read_reviews", None, detail, durable=False)
    return page


class Decision(BaseModel):
    decision: Literal["accept", "reject"] = Field(description="Link the two persons, or not")
    note: str = Field(default="", max_length=500, description="Why (kept with the decision)")


@router.post("/v1/identity/reviews/{pair_id}")
def decide(request: Request, admin: Admin, pair_id: int, body: Decision) -> MatchedPair:
    """A reviewer's decision: accept links the two persons, reject never proposes them again."""
    linker = core(request).linker
    pair = linker.decide(pair_id, body.decision == "accept", body.note)
    audited(request, admin, "identity.review", f"pair:{pair_id}", f"{body.decision}: {pair.status}")
    return pair


@router.post("/v1/identity/rebuild")
def rebuild_identity(
    request: Request,
    admin: Admin,
    extract: Annotated[
        bool,
        Query(
            description="Extract every event's identifiers again even when the identifier "
            "rules that found the stored ones are today's"
        ),
    ] = False,
) -> RebuildResult:
    """Recompute the whole identity map from the events (set-based)."""
    from touchpoints.identity.rebuild import rebuild

    result = rebuild(core(request).identity, extract=extract)
    audited(request, admin, "identity.rebuild", None, f"{result.persons} persons")
    return result


@router.post("/v1/identity/load")
def load_identity(request: Request, admin: Admin, body: LoadQuery) -> PersonsLoaded:
    """Load an identity map rebuilt outside touchpoints (``touchpoints spark rebuild``): every
    identifier's person and the refused links, from a result directory on the server's
    machine. 409 when the result is not the rebuild of this warehouse as it is now (an older
    export, other identifier or merge rules, other links or identifiers); 422 when it is
    incomplete or not a result."""
    loaded = load_persons(core(request).identity, body)
    audited(request, admin, "identity.load", None, f"{loaded.persons} persons from {body.result}")
    return loaded
