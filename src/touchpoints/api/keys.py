"""API keys: create (the secret is shown once), list and revoke. Admin only."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from touchpoints.api.auth import require
from touchpoints.privacy.keys import ApiKey

router = APIRouter(prefix="/v1/keys", tags=["keys"])
Admin = Annotated[ApiKey, Depends(require("admin"))]


class NewKey(BaseModel):
    role: Literal["write", "read", "admin"]
    name: str | None = Field(default=None, max_length=200)


@router.post("", status_code=201)
def create_key(request: Request, _: Admin, body: NewKey) -> dict[str, Any]:
    key, secret = request.app.state.tp.keys.create(body.role, body.name)
    return {**key.as_dict(), "secret": secret}


@router.get("")
def list_keys(request: Request, _: Admin) -> dict[str, Any]:
    return {"keys": [key.as_dict() for key in request.app.state.tp.keys.list()]}


@router.delete("/{key_id}")
def revoke_key(request: Request, _: Admin, key_id: str) -> dict[str, Any]:
    return request.app.state.tp.keys.revoke(key_id).as_dict()
