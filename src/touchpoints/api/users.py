"""Dashboard users: create, list, change a role, disable and enable, set a new password.
Admin only; every change is recorded in the audit log (naming the user by id, never the
password). A changed role, a new password or a disabled account ends the user's sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from touchpoints.access.keys import ApiKey
from touchpoints.access.roles import UserRole
from touchpoints.access.users import NAME_MAX, PASSWORD_MAX, User, UserInfo, UserList
from touchpoints.api.auth import audited, require
from touchpoints.api.state import core

router = APIRouter(prefix="/v1/users", tags=["users"])
Admin = Annotated[ApiKey, Depends(require("admin"))]
Password = Field(max_length=PASSWORD_MAX, description="At least 12 characters; never stored")


class NewUser(BaseModel):
    name: str = Field(max_length=NAME_MAX, description="Letters, digits and . _ @ -")
    role: UserRole
    password: str = Password


class RoleChange(BaseModel):
    role: UserRole


class NewPassword(BaseModel):
    password: str = Password


def _done(request: Request, admin: ApiKey, action: str, user: User, detail: str) -> UserInfo:
    audited(request, admin, action, f"user:{user.id}", detail)
    return user.info()


@router.post("", status_code=201)
def create_user(request: Request, admin: Admin, body: NewUser) -> UserInfo:
    """A new user with a role and a password (only its argon2 hash is kept)."""
    user = core(request).users.create(body.name, body.role, body.password)
    return _done(request, admin, "user.create", user, f"role {user.role}")


@router.get("")
def list_users(request: Request, _: Admin) -> UserList:
    """Every user, disabled ones included, oldest first."""
    return UserList(users=[user.info() for user in core(request).users.list()])


@router.get("/{name}")
def show_user(request: Request, _: Admin, name: str) -> UserInfo:
    return core(request).users.get(name).info()


@router.put("/{name}/role")
def change_role(request: Request, admin: Admin, name: str, body: RoleChange) -> UserInfo:
    """Give the user another role; their sessions end."""
    users = core(request).users
    before = users.get(name).role
    user = users.set_role(name, body.role)
    return _done(request, admin, "user.role", user, f"{before} → {user.role}")


@router.post("/{name}/disable")
def disable_user(request: Request, admin: Admin, name: str) -> UserInfo:
    """The user can no longer sign in; their sessions end now."""
    return _done(request, admin, "user.disable", core(request).users.disable(name), "disabled")


@router.post("/{name}/enable")
def enable_user(request: Request, admin: Admin, name: str) -> UserInfo:
    return _done(request, admin, "user.enable", core(request).users.enable(name), "enabled")


@router.put("/{name}/password")
def set_password(request: Request, admin: Admin, name: str, body: NewPassword) -> UserInfo:
    """A new password (the old one stops working, the user's sessions end)."""
    user = core(request).users.set_password(name, body.password)
    return _done(request, admin, "user.password", user, "password set")
