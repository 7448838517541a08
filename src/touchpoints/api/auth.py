"""Who is calling: a key from ``Authorization: Bearer <key>`` or Basic (key as user name)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, Request

from touchpoints.privacy.keys import ApiKey, secret_from_header


def require(permission: str) -> Callable[[Request], ApiKey]:
    """A dependency that lets the request through only with a key allowed ``permission``."""

    def check(request: Request) -> ApiKey:
        secret = secret_from_header(request.headers.get("authorization"))
        if secret is None:
            raise HTTPException(
                401,
                f"this endpoint needs a key with the {permission!r} permission: "
                "send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        key = request.app.state.tp.keys.verify(secret)
        if key is None:
            raise HTTPException(401, "the key is not valid (unknown or revoked)")
        if not key.allows(permission):
            raise HTTPException(
                403, f"a {key.role} key may not do this; it needs the {permission!r} permission"
            )
        return key

    return check
