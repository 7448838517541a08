"""API keys: create (the secret is shown once), list and revoke. Admin only; creations and
revocations are recorded in the audit log."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from touchpoints.access.keys import ApiKey, KeyInfo, KeyList, NewKeyInfo
from touchpoints.api.auth import audited, require
from touchpoints.api.state import core

router = APIRouter(prefix="/v1/keys", tags=["keys"])
Admin = Annotated[ApiKey, Depends(require("admin"))]


class NewKey(BaseModel):
    role: Literal["write", "read", "admin"]
    name: str | None = Field(default=None, max_length=200)
    source: str | None = Field(
        default=None,
        max_length=64,
        description=(
            "For a write key: the source its events are stamped with (web-shop); a new key "
            "for a source carries on its events. None: the key's id is their source."
        ),
    )


@router.post("", status_code=201)
def create_key(request: Request, admin: Admin, body: NewKey) -> NewKeyInfo:
    """A new key; its secret is in this answer and nowhere else."""
    key, secret = core(request).keys.create(body.role, body.name, body.source)
    audited(request, admin, "key.create", f"key:{key.id}", f"role {key.role}")
    return NewKeyInfo(**key.info().model_dump(), secret=secret)


@router.get("")
def list_keys(request: Request, _: Admin) -> KeyList:
    """Every key, revoked ones included, never a secret."""
    return KeyList(keys=[key.info() for key in core(request).keys.list()])


@router.delete("/{key_id}")
def revoke_key(request: Request, admin: Admin, key_id: str) -> KeyInfo:
    """Revoke a key: it stops working at once, sessions signed in with it end."""
    key = core(request).keys.revoke(key_id)
    audited(request, admin, "key.revoke", f"key:{key.id}", f"role {key.role}")
    return key.info()
