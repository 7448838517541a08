"""How a command reaches a data directory: always through the API, over HTTP or in process.

A running server holds the DuckDB file exclusively and announces itself in ``server.json``
(its pid, address and an in-memory admin token); then commands talk to it over HTTP. Without
one, the command opens the data directory itself (``Touchpoints.open``: the write-ahead log
recovered first) and drives the very same ASGI app in process, through httpx's ASGI
transport on an event loop of its own: no port, no writer thread (the collector writes
straight to the warehouse). Either way every command is one request to one route: there is
no second implementation of anything for the CLI.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar, get_args, get_origin

import anyio.from_thread
import httpx
import orjson
from pydantic import BaseModel, ValidationError

from touchpoints.config import Settings
from touchpoints.journeys.queries import Answers

M = TypeVar("M", bound=BaseModel)
_IN_PROCESS = "http://touchpoints.in-process"


class ClientError(Exception):
    """A command could not be carried out; the message is fit for the user."""


def running_server(settings: Settings) -> dict[str, Any] | None:
    """The server.json of a live server on this data directory, or None."""
    try:
        info = orjson.loads(settings.server_file.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    if not isinstance(info, dict):
        return None
    pid = info.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return None
    return info


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def answer_type(query: Answers[M]) -> type[M]:
    """The model a query's answer comes in (the ``X`` of its ``Answers[X]`` base)."""
    for klass in type(query).__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            if get_origin(base) is Answers:
                (found,) = get_args(base)
                return found  # type: ignore[no-any-return]
    raise TypeError(f"{type(query).__name__} does not name its answer")


def _refusal(response: httpx.Response) -> str:
    """The reason in an error answer: ``detail`` (a text, or FastAPI's list of problems)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or f"status {response.status_code}"
    found = body.get("detail") or body.get("error") if isinstance(body, dict) else body
    if isinstance(found, list):  # FastAPI's validation errors: say where and what
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', ())[1:]) or 'request'}: "
            f"{str(item.get('msg', item)).removeprefix('Value error, ')}"
            for item in found
            if isinstance(item, dict)
        )
    return str(found)


class Api:
    """The API of one data directory, with the methods commands need: ``get``, ``post``,
    ``put``, ``delete`` (JSON in, JSON or a typed model out) and ``query`` (a journey
    question)."""

    def __init__(self, http: httpx.Client, where: str) -> None:
        self._http = http
        self.where = where  # for messages: "the server (pid 12, http://…)" or "in process"

    def close(self) -> None:
        self._http.close()

    def request(
        self, method: str, path: str, *, timeout: float = 3600, **kwargs: Any
    ) -> httpx.Response:
        try:
            return self._http.request(method, path, timeout=timeout, **kwargs)
        except httpx.HTTPError as exc:
            raise ClientError(f"{self.where} did not answer: {exc}") from None

    def call(self, method: str, path: str, answer: type[M] | None = None, **kwargs: Any) -> Any:
        """One request; the answer as ``answer`` (a model) or as JSON. An error answer is a
        :class:`ClientError` with the server's reason."""
        response = self.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise ClientError(_refusal(response))
        if answer is None:
            return response.json() if response.content else None
        try:
            return answer.model_validate_json(response.content)
        except ValidationError as exc:  # a server of another version
            raise ClientError(f"{self.where} answered in an unexpected form: {exc}") from None

    def get(self, path: str, answer: type[M] | None = None, **params: Any) -> Any:
        return self.call("GET", path, answer, params=_params(params))

    def post(
        self,
        path: str,
        body: BaseModel | dict[str, Any] | None = None,
        answer: type[M] | None = None,
        **params: Any,
    ) -> Any:
        content = body.model_dump_json() if isinstance(body, BaseModel) else orjson.dumps(body)
        return self.call(
            "POST",
            path,
            answer,
            content=content,
            params=_params(params),
            headers={"Content-Type": "application/json"},
        )

    def put(self, path: str, body: dict[str, Any], answer: type[M] | None = None) -> Any:
        return self.call(
            "PUT",
            path,
            answer,
            content=orjson.dumps(body),
            headers={"Content-Type": "application/json"},
        )

    def download(self, path: str, body: BaseModel | dict[str, Any]) -> httpx.Response:
        """A POST whose answer is a file (an export): the response, its status checked."""
        content = body.model_dump_json() if isinstance(body, BaseModel) else orjson.dumps(body)
        response = self.request(
            "POST", path, content=content, headers={"Content-Type": "application/json"}
        )
        if response.status_code >= 400:
            raise ClientError(_refusal(response))
        return response

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)

    def query(self, question: Answers[M]) -> M:
        """A journey question answered by ``POST /v1/journeys/query``, as its typed answer."""
        assert isinstance(question, BaseModel)
        return self.post("/v1/journeys/query", question, answer_type(question))  # type: ignore[no-any-return]

    def send_batch(self, path: str, body: bytes) -> httpx.Response:
        """A collector request (imports): retried while the server answers 429."""
        headers = {"Content-Type": "application/json"}
        for _attempt in range(30):
            response = self.request("POST", path, content=body, headers=headers)
            if response.status_code != 429:
                return response
            time.sleep(float(response.headers.get("Retry-After", "1")))
        raise ClientError(f"{self.where} stayed busy (429) for 30 attempts; try again later")


def _params(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters without the unset ones (None), lists repeated, dates as ISO."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif hasattr(value, "isoformat"):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


class InProcessTransport(httpx.BaseTransport):
    """An ``httpx`` transport that answers from an ASGI app in this process: an event loop
    in a thread of its own (anyio's blocking portal) runs httpx's ``ASGITransport``, so a
    plain synchronous ``httpx.Client`` (auth, params, headers and all) talks to the app
    without a port. The CLI uses it when no server runs, and the tests use it to call the
    API in process."""

    def __init__(self, app: Any) -> None:
        self._portal_cm: AbstractContextManager[Any] = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def answer() -> tuple[int, httpx.Headers, bytes]:
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await self._asgi.handle_async_request(forwarded)
            return response.status_code, response.headers, await response.aread()

        status, headers, content = self._portal.call(answer)
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        self._portal_cm.__exit__(None, None, None)


def in_process_client(app: Any, token: str | None = None) -> httpx.Client:
    """A client of ``app`` in this process (see :class:`InProcessTransport`)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(
        transport=InProcessTransport(app), base_url=_IN_PROCESS, headers=headers, timeout=None
    )


def _pinned(cert: object) -> ssl.SSLContext | bool:
    """For a server serving HTTPS, trust its own certificate (named in server.json) and no
    other: the CLI speaks to it on this machine, by an address the certificate may not name
    (127.0.0.1, 0.0.0.0), and the certificate itself is the identity checked."""
    if not isinstance(cert, str):
        return True
    context = ssl.create_default_context(cafile=cert)
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the leaf itself is trusted
    return context


@contextmanager
def connect(settings: Settings) -> Iterator[Api]:
    """The API of ``settings.data_dir``: the running server's, or the app in process."""
    info = running_server(settings)
    if info is not None:
        http = httpx.Client(
            base_url=info["url"],
            headers={"Authorization": f"Bearer {info['token']}"},
            verify=_pinned(info.get("tls_cert")),
        )
        api = Api(http, f"the server (pid {info['pid']}) at {info['url']}")
        try:
            yield api
        finally:
            api.close()
        return
    from touchpoints.api.app import create_app
    from touchpoints.core import Touchpoints

    tp = Touchpoints.open(settings)
    try:
        token = tp.keys.add_ephemeral("admin", "cli")
        api = Api(in_process_client(create_app(tp), token), "touchpoints (in process)")
        try:
            yield api
        finally:
            api.close()
    finally:
        tp.close()
