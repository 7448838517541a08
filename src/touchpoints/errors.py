"""The errors a user can cause, in one hierarchy, with the HTTP status of each kind.

Parts raise these with a message fit for the user that names the place (field, parameter,
identifier) and the reason. The API answers every one of them the same way,
``{"detail": message}`` with the kind's :attr:`~TouchpointsError.status`
(``api/errors.py`` installs that once for every route); the CLI prints the message and the
pages show it. Before, each route, page and client mapped its own exceptions (about 38 times).

The kinds also derive from the built-in exception a caller would expect (``ValueError`` for
a bad request, ``LookupError`` for something missing), so code that catches those still does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar


class TouchpointsError(Exception):
    """Something asked of touchpoints could not be done; ``str(exc)`` says what and why."""

    status: ClassVar[int] = 400

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers  # to send with the answer (WWW-Authenticate, Retry-After)


class BadRequest(TouchpointsError, ValueError):
    """An address or parameter that cannot be read (an identifier key, a page cursor)."""

    status = 400


class InvalidRequest(TouchpointsError, ValueError):
    """A question or body that can be read but asks for something that cannot be done
    (an analysis with bad parameters, matching with too few records)."""

    status = 422


class Unauthorized(TouchpointsError):
    """No key, or a key that is not valid (unknown or revoked)."""

    status = 401


class Forbidden(TouchpointsError):
    """A valid key whose role may not do this."""

    status = 403


class NotFound(TouchpointsError, LookupError):
    """What was named does not exist (a person, a pair, a link, a key, an item)."""

    status = 404


class Conflict(TouchpointsError):
    """The current state does not allow it (a pair decided already)."""

    status = 409


class TooLarge(TouchpointsError):
    """A request body or form larger than its limit (read no further than the limit)."""

    status = 413


class TooManyRequests(TouchpointsError):
    """A key sent more requests than its rate limit allows; retry after ``Retry-After``."""

    status = 429


def status_of(exc: BaseException) -> int:
    """The HTTP status for ``exc``: its kind's, or 500 for anything else (a bug)."""
    return exc.status if isinstance(exc, TouchpointsError) else 500


# Where a problem sits in an HTTP request: left out of its place (``query.depth`` → ``depth``).
_REQUEST_PARTS = frozenset({"query", "body", "path", "header", "cookie"})


def describe(problems: Iterable[Mapping[str, Any]], request: bool = False) -> str:
    """``steps[1].event: give an event name; window: …`` from pydantic's (or FastAPI's)
    errors: each problem's place, then its reason. A check of a whole question names its own
    field ("until: give a moment after since") and is shown as it is. With ``request``, the
    first part of each place (query, body, path) is left out."""
    out = []
    for problem in problems:
        loc = list(problem.get("loc", ()))
        if request and loc and loc[0] in _REQUEST_PARTS:
            loc = loc[1:]
        place = ""
        for part in loc:
            place += f"[{part}]" if isinstance(part, int) else (f".{part}" if place else part)
        message = str(problem.get("msg", "")).removeprefix("Value error, ")
        out.append(f"{place}: {message}" if place else message)
    return "; ".join(out)
