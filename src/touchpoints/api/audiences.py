"""Audiences and computed traits: admins define them (every change audited), read keys see
them (figures need ``analytics``; lists of persons, ``profiles``, each person listed recorded
as the funnels' drop-offs are: ``profile.list``). A definition is a JSON object (see
docs/audiences.md and ``GET /v1/audiences/schema``); a mistake is answered 422 with its place
and its reason (``condition.and[1].event.at_least: …``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from touchpoints.access.keys import ApiKey
from touchpoints.activate.audiences.conditions import KEY_PATTERN, AudienceDefinition
from touchpoints.activate.audiences.results import (
    Audience,
    AudienceFileRun,
    AudienceList,
    ComputedTrait,
    ComputedTraitList,
    Evaluated,
    MemberPage,
    MembershipHistory,
    Preview,
    SizeHistory,
    TraitValues,
)
from touchpoints.activate.audiences.traits import ComputedTraitDefinition
from touchpoints.api.auth import audited, require
from touchpoints.api.state import core

router = APIRouter(tags=["audiences"])
Admin = Annotated[ApiKey, Depends(require("admin"))]
Analyst = Annotated[ApiKey, Depends(require("analytics"))]
Reader = Annotated[ApiKey, Depends(require("profiles"))]
Key = Annotated[str, Path(pattern=KEY_PATTERN, description="The key (e.g. high_intent)")]
Limit = Annotated[int, Query(ge=1, le=10_000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Definition = Annotated[
    dict[str, Any],
    Body(description="The definition: key, name, description and condition (docs/audiences.md)"),
]
TraitDefinition = Annotated[
    dict[str, Any],
    Body(description="key, name, description, kind, event, property, where, channel, within_days"),
]


class Link(BaseModel):
    destination: int = Field(ge=1, le=2**63 - 1, description="The destination's id")
    mode: Literal["identify", "track", "file"] | None = Field(
        default=None,
        description="identify: <key>: true|false as a trait; track: Audience Entered/Exited; "
        "file: every member as one CSV or Parquet file on a schedule. None: file for a file "
        "destination, else identify",
    )
    schedule: str | None = Field(
        default=None,
        max_length=100,
        description="A file link's schedule: every 15 minutes, every 2 hours, daily at 06:00 (UTC)",
    )


# -- computed traits ----------------------------------------------------------------------------
@router.get("/v1/traits/computed")
def traits(request: Request, _: Analyst) -> ComputedTraitList:
    """Every computed trait with its definition and how many persons have a value."""
    return core(request).traits.listing()


@router.post("/v1/traits/computed", status_code=201)
def create_trait(request: Request, admin: Admin, body: TraitDefinition) -> ComputedTrait:
    """A new computed trait, computed for everyone at once and kept current after."""
    made = core(request).traits.create(body)
    audited(request, admin, "trait.create", f"trait:{made.key}", made.kind)
    return made


@router.get("/v1/traits/computed/schema")
def trait_schema(_: Analyst) -> dict[str, Any]:
    """The JSON Schema of a computed trait's definition."""
    return ComputedTraitDefinition.model_json_schema(by_alias=True)


@router.get("/v1/traits/computed/{key}")
def trait(request: Request, _: Analyst, key: Key) -> ComputedTrait:
    return core(request).traits.get(key)


@router.put("/v1/traits/computed/{key}")
def change_trait(request: Request, admin: Admin, key: Key, body: TraitDefinition) -> ComputedTrait:
    """A new definition for the trait (its key stays); computed again for everyone, and the
    audiences that test it evaluated again."""
    changed = core(request).traits.change(key, body)
    audited(request, admin, "trait.change", f"trait:{key}", changed.kind)
    return changed


@router.delete("/v1/traits/computed/{key}", status_code=204)
def remove_trait(request: Request, admin: Admin, key: Key) -> Response:
    """The trait and every value of it (refused while an audience tests it)."""
    core(request).traits.remove(key)
    audited(request, admin, "trait.delete", f"trait:{key}")
    return Response(status_code=204)


@router.get("/v1/traits/computed/{key}/values")
def trait_values(
    request: Request, reader: Reader, key: Key, limit: Limit = 100, offset: Offset = 0
) -> TraitValues:
    """Persons and their values, largest numbers first."""
    found = core(request).traits.values(key, limit, offset)
    for value in found.values:
        audited(request, reader, "profile.list", value.person, f"trait {key}", durable=False)
    return found


# -- audiences -------------------------------------------------------------------------------------
@router.get("/v1/audiences")
def audiences(request: Request, _: Analyst) -> AudienceList:
    """Every audience with its condition, size and destinations."""
    return core(request).audiences.listing()


@router.post("/v1/audiences", status_code=201)
def create_audience(request: Request, admin: Admin, body: Definition) -> Audience:
    """A new audience, evaluated for everyone at once and kept current after."""
    made = core(request).audiences.create(body)
    audited(request, admin, "audience.create", f"audience:{made.key}", f"{made.size} members")
    return made


@router.post("/v1/audiences/preview")
def preview(request: Request, _: Analyst, body: Definition) -> Preview:
    """How many persons a condition (``{"condition": …}``) holds for now; nothing is saved."""
    return core(request).audiences.preview(body)


@router.get("/v1/audiences/schema")
def audience_schema(_: Analyst) -> dict[str, Any]:
    """The JSON Schema of an audience's definition (the condition language)."""
    return AudienceDefinition.model_json_schema(by_alias=True)


@router.get("/v1/audiences/history")
def history(request: Request, reader: Reader, limit: Limit = 100) -> MembershipHistory:
    """Entries into and exits from every audience, newest first."""
    found = core(request).audiences.history(None, limit)
    for change in found.changes:
        audited(request, reader, "profile.list", change.person, "audience history", durable=False)
    return found


@router.post("/v1/audiences/evaluate")
def evaluate(request: Request, admin: Admin) -> Evaluated:
    """Evaluate every computed trait and audience for everyone now (the server also does
    so on a schedule, and for each person as their events arrive)."""
    done = core(request).audiences.evaluate()
    audited(request, admin, "audience.evaluate", None, f"{done.entered} in, {done.exited} out")
    return done


@router.get("/v1/audiences/{key}")
def audience(request: Request, _: Analyst, key: Key) -> Audience:
    return core(request).audiences.get(key)


@router.put("/v1/audiences/{key}")
def change_audience(request: Request, admin: Admin, key: Key, body: Definition) -> Audience:
    """A new condition (or name) for the audience, its key kept; evaluated again for
    everyone, with entries and exits sent to its destinations."""
    changed = core(request).audiences.change(key, body)
    audited(request, admin, "audience.change", f"audience:{key}", f"{changed.size} members")
    return changed


@router.delete("/v1/audiences/{key}", status_code=204)
def remove_audience(request: Request, admin: Admin, key: Key) -> Response:
    """The audience, its members, history and sizes (refused while another audience names
    it); its destinations are sent nothing more."""
    core(request).audiences.remove(key)
    audited(request, admin, "audience.delete", f"audience:{key}")
    return Response(status_code=204)


@router.get("/v1/audiences/{key}/members")
def members(
    request: Request, reader: Reader, key: Key, limit: Limit = 100, offset: Offset = 0
) -> MemberPage:
    """The audience's members, longest first."""
    found = core(request).audiences.members(key, limit, offset)
    for member in found.members:
        audited(request, reader, "profile.list", member.person, f"audience {key}", durable=False)
    return found


@router.get("/v1/audiences/{key}/history")
def audience_history(
    request: Request, reader: Reader, key: Key, limit: Limit = 100
) -> MembershipHistory:
    """Entries into and exits from the audience, newest first."""
    found = core(request).audiences.history(key, limit)
    for change in found.changes:
        audited(request, reader, "profile.list", change.person, f"audience {key}", durable=False)
    return found


@router.get("/v1/audiences/{key}/sizes")
def sizes(
    request: Request, _: Analyst, key: Key, days: Annotated[int, Query(ge=1, le=3660)] = 90
) -> SizeHistory:
    """The audience's size at the end of each day, and its entries and exits that day."""
    return core(request).audiences.sizes(key, days)


@router.post("/v1/audiences/{key}/destinations")
def link(request: Request, admin: Admin, key: Key, body: Link) -> Audience:
    """Send the audience to a destination: a webhook or a Segment-compatible collector gets
    every member now, then each entry and exit; a file destination gets every member as one
    file now and on the schedule."""
    linked = core(request).audiences.link(key, body.destination, body.mode, body.schedule)
    mode = next(d.mode for d in linked.destinations if d.destination == body.destination)
    detail = f"destination {body.destination}, {mode}" + (
        f", {body.schedule}" if body.schedule else ""
    )
    audited(request, admin, "audience.link", f"audience:{key}", detail)
    return linked


@router.post("/v1/audiences/{key}/destinations/{destination_id}/export", status_code=202)
def export_now(
    request: Request,
    admin: Admin,
    key: Key,
    destination_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> AudienceFileRun:
    """A file link's run now, besides its schedule: every member (with consent to the
    destination's purposes) as one file, through the outbox."""
    run = core(request).audiences.export_now(key, destination_id)
    detail = f"destination {destination_id}, {run.rows} rows"
    audited(request, admin, "audience.export", f"audience:{key}", detail)
    return run


@router.delete("/v1/audiences/{key}/destinations/{destination_id}")
def unlink(
    request: Request,
    admin: Admin,
    key: Key,
    destination_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> Audience:
    """Stop sending the audience to the destination (what is in its outbox still goes; a
    file link's file and its runs in the outbox are removed)."""
    unlinked = core(request).audiences.unlink(key, destination_id)
    audited(request, admin, "audience.unlink", f"audience:{key}", f"destination {destination_id}")
    return unlinked
