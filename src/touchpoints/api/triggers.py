"""Triggers: admins define them (every change audited), read keys see them (definitions
need ``analytics``; firings name persons, so they need ``profiles`` and each person listed
is recorded as ``profile.list``). A definition is a JSON object (see docs/triggers.md and
``GET /v1/triggers/schema``); a mistake is answered 422 with its place and its reason
(``steps[1].delay: …``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from touchpoints.access.keys import ApiKey
from touchpoints.activate.audiences.conditions import KEY_PATTERN
from touchpoints.activate.triggers.definition import TriggerDefinition
from touchpoints.activate.triggers.results import Checked, FiringList, Trigger, TriggerList
from touchpoints.api.auth import audited, require
from touchpoints.api.state import core

router = APIRouter(tags=["triggers"])
Admin = Annotated[ApiKey, Depends(require("admin"))]
Analyst = Annotated[ApiKey, Depends(require("analytics"))]
Reader = Annotated[ApiKey, Depends(require("profiles"))]
Key = Annotated[str, Path(pattern=KEY_PATTERN, description="The key (e.g. cart_reminder)")]
Limit = Annotated[int, Query(ge=1, le=10_000)]
Definition = Annotated[
    dict[str, Any],
    Body(description="The definition: key, name, description, enabled, when, steps, limit"),
]


@router.get("/v1/triggers")
def triggers(request: Request, _: Analyst) -> TriggerList:
    """Every trigger with its definition and how often it fired."""
    return core(request).triggers.listing()


@router.post("/v1/triggers", status_code=201)
def create(request: Request, admin: Admin, body: Definition) -> Trigger:
    """A new trigger: it fires for what arrives from now on."""
    made = core(request).triggers.create(body)
    audited(request, admin, "trigger.create", f"trigger:{made.key}", _detail(made))
    return made


@router.post("/v1/triggers/validate")
def validate(request: Request, _: Analyst, body: Definition) -> Checked:
    """Check a definition, and what it names, without saving it."""
    return core(request).triggers.check(body)


@router.get("/v1/triggers/schema")
def schema(_: Analyst) -> dict[str, Any]:
    """The JSON Schema of a trigger's definition."""
    return TriggerDefinition.model_json_schema(by_alias=True)


@router.get("/v1/triggers/firings")
def firings(
    request: Request,
    reader: Reader,
    limit: Limit = 100,
    person: Annotated[str | None, Query(max_length=500, description="Any identifier")] = None,
) -> FiringList:
    """Firings of every trigger (of one person, with ``person``), newest first."""
    found = core(request).triggers.firings(None, person, limit)
    for firing in found.firings:
        audited(request, reader, "profile.list", firing.person, "trigger firings", durable=False)
    return found


@router.get("/v1/triggers/{key}")
def trigger(request: Request, _: Analyst, key: Key) -> Trigger:
    return core(request).triggers.get(key)


@router.put("/v1/triggers/{key}")
def change(request: Request, admin: Admin, key: Key, body: Definition) -> Trigger:
    """A new definition for the trigger (its key stays); ``enabled: false`` pauses it."""
    changed = core(request).triggers.change(key, body)
    audited(request, admin, "trigger.change", f"trigger:{key}", _detail(changed))
    return changed


@router.delete("/v1/triggers/{key}", status_code=204)
def remove(request: Request, admin: Admin, key: Key) -> Response:
    """The trigger, its firings and the delays waiting (messages already in the outbox
    still go)."""
    core(request).triggers.remove(key)
    audited(request, admin, "trigger.delete", f"trigger:{key}")
    return Response(status_code=204)


@router.get("/v1/triggers/{key}/firings")
def trigger_firings(request: Request, reader: Reader, key: Key, limit: Limit = 100) -> FiringList:
    """The trigger's firings, newest first."""
    found = core(request).triggers.firings(key, None, limit)
    for firing in found.firings:
        audited(request, reader, "profile.list", firing.person, f"trigger {key}", durable=False)
    return found


def _detail(trigger: Trigger) -> str:
    """The audit line's detail: no text of the definition (it may hold anything)."""
    steps = len(trigger.definition.get("steps", []))
    return f"{steps} steps, {'enabled' if trigger.enabled else 'disabled'}"
