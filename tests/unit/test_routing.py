"""The router that finds exact paths in a dictionary answers as Starlette's own walk does."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, Router
from starlette.testclient import TestClient

from touchpoints.api.routing import Routes


def _says(text: str):  # noqa: ANN202 - a Starlette endpoint
    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{text} {request.method} {dict(request.path_params)}")

    return endpoint


def _routes() -> list:
    inner = Router([Route("/{rest:path}", _says("mounted"), methods=["GET", "POST"])])
    return [
        Route("/v1/track", _says("track"), methods=["POST", "OPTIONS"]),
        Route("/v1/profiles/{key:path}", _says("lookup"), methods=["GET"]),
        Route("/v1/profiles/special", _says("never"), methods=["GET"]),  # shadowed above
        Route("/v1/decide", _says("decide"), methods=["POST"]),
        Route("/v1/decide", _says("second"), methods=["GET"]),  # same path, later
        Mount("", app=inner),
    ]


CASES = [
    ("POST", "/v1/track"),
    ("OPTIONS", "/v1/track"),
    ("GET", "/v1/track"),  # the method is not the route's: Starlette's walk decides
    ("GET", "/v1/profiles/special"),
    ("GET", "/v1/profiles/email:a@b.example"),
    ("POST", "/v1/decide"),
    ("GET", "/v1/decide"),
    ("DELETE", "/v1/decide"),
    ("GET", "/elsewhere"),
]


@pytest.mark.parametrize(("method", "path"), CASES)
def test_the_same_answer_as_starlettes_router(method: str, path: str) -> None:
    answers = []
    for router in (Router(_routes()), Routes(_routes())):
        with TestClient(router) as client:
            found = client.request(method, path)
        answers.append((found.status_code, found.text, found.headers.get("allow")))
    assert answers[0] == answers[1]
    assert answers[0][0] in (200, 405)


def test_only_unshadowed_exact_paths_are_looked_up() -> None:
    router = Routes(_routes())
    found = {path: route.endpoint.__qualname__ for path, route in router.exact.items()}
    assert sorted(found) == ["/v1/decide", "/v1/track"]
    # the first of two routes with one path is the one Starlette's walk would take
    assert router.exact["/v1/decide"].methods == {"POST"}
