"""Who is calling: a key from ``Authorization: Bearer <key>`` or Basic (key as user name).

Checking a key is a dictionary lookup in memory (``KeyStore.verify``: the SHA-256 of each
secret is remembered, the live keys are held by hash and replaced as soon as one is revoked),
so the check runs on the event loop: no worker thread, no database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from touchpoints.access.keys import ApiKey, KeyStore, secret_from_header
from touchpoints.api.state import core
from touchpoints.errors import Forbidden, Unauthorized


def authorise(keys: KeyStore, header: str | None, permission: str) -> ApiKey:
    """The live key in ``header`` if it is allowed ``permission``; otherwise raise
    :class:`~touchpoints.errors.Unauthorized` or :class:`~touchpoints.errors.Forbidden`."""
    secret = secret_from_header(header)
    if secret is None:
        raise Unauthorized(
            f"this endpoint needs a key with the {permission!r} permission: "
            "send 'Authorization: Bearer <key>'",
            {"WWW-Authenticate": "Bearer"},
        )
    key = keys.verify(secret)
    if key is None:
        raise Unauthorized("the key is not valid (unknown or revoked)")
    if not key.allows(permission):
        raise Forbidden(f"a {key.role} key may not do this; it needs the {permission!r} permission")
    return key


def require(permission: str) -> Callable[[Request], Awaitable[ApiKey]]:
    """A dependency that lets the request through only with a key allowed ``permission``.

    Async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, and the
    check is a dictionary lookup.
    """

    async def check(request: Request) -> ApiKey:
        keys = core(request).keys
        return authorise(keys, request.headers.get("authorization"), permission)

    return check
