"""Who is calling: a key from ``Authorization: Bearer <key>`` or Basic (key as user name),
and what it may do (the permission each route names: :mod:`touchpoints.access.roles`).

Checking a key is a dictionary lookup in memory (``KeyStore.verify``: the SHA-256 of each
secret is remembered, the live keys are held by hash and replaced as soon as one is revoked),
so the check runs on the event loop: no worker thread, no database.

:func:`audited` records what a caller did in the audit log (``tp.audit``), with the client's
address (:func:`origin`: behind a trusted proxy, the address it forwarded for).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from touchpoints.access.keys import ApiKey, KeyStore, secret_from_header
from touchpoints.access.roles import checked
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
    allow(key, permission)
    return key


def allow(key: ApiKey, permission: str) -> None:
    """Raise :class:`~touchpoints.errors.Forbidden` unless ``key`` may ``permission`` (for a
    route whose answer needs more for some questions: a person's stages, say)."""
    if not key.allows(permission):
        raise Forbidden(f"a {key.role} key may not do this; it needs the {permission!r} permission")


def require(permission: str) -> Callable[[Request], Awaitable[ApiKey]]:
    """A dependency that lets the request through only with a key allowed ``permission``.

    Async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, and the
    check is a dictionary lookup.
    """
    checked(permission)

    async def check(request: Request) -> ApiKey:
        keys = core(request).keys
        return authorise(keys, request.headers.get("authorization"), permission)

    check.permission = permission  # type: ignore[attr-defined]  # read by tests/unit/test_roles.py
    return check


def origin(request: Request) -> str | None:
    return core(request).proxies.client_address(request)


def audited(
    request: Request,
    key: ApiKey,
    action: str,
    target: str | None = None,
    detail: str | None = None,
    *,
    durable: bool = True,
) -> None:
    """Record that ``key`` did ``action`` to ``target`` (written at once unless ``durable``
    is False: reads, which the writer thread writes within 100 ms)."""
    core(request).audit.record(key.id, action, target, origin(request), detail, durable=durable)
