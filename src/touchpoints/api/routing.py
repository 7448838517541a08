"""Starlette's router with the exact paths found in one dictionary lookup.

Starlette's ``Router`` tries its routes in order, a regular expression each: the decision
route sat behind the collector's twenty paths and the profile lookup, and matching them cost
a fifth of a decision's time in the server (cProfile, 2026-12-02: 120,000 ``Route.matches``
for 6,000 decisions). :class:`Routes` answers a request whose path is one of its exact
(parameterless) routes from a dictionary, and leaves everything else (parameters, mounts,
405s, redirects, a ``root_path``, the lifespan) to Starlette's walk, which gives the same
answer: a path is put in the dictionary only if no route before it in the list matches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Receive, Scope, Send


class Routes(Router):
    """A ``Router`` whose exact paths are found without trying every route before them."""

    def __init__(self, routes: Sequence[BaseRoute], **options: Any) -> None:
        super().__init__(routes=list(routes), **options)
        self.exact: dict[str, Route] = {}
        for index, route in enumerate(routes):
            if not isinstance(route, Route) or route.param_convertors:
                continue
            earlier = routes[:index]
            if route.path not in self.exact and not any(
                isinstance(other, Route | Mount) and other.path_regex.match(route.path)
                for other in earlier
            ):
                self.exact[route.path] = route

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            route = self.exact.get(scope["path"])
            if route is not None and (route.methods is None or scope["method"] in route.methods):
                scope.setdefault("router", self)
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = dict(scope.get("path_params", {}))
                await route.app(scope, receive, send)
                return
        await super().app(scope, receive, send)
