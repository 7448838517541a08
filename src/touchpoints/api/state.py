"""The core a request is served by, typed (``request.app.state`` is untyped)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

if TYPE_CHECKING:
    from touchpoints.core import Touchpoints


def core(request: Request) -> Touchpoints:
    """The :class:`~touchpoints.core.Touchpoints` of the app serving ``request``."""
    return request.app.state.tp  # type: ignore[no-any-return]
