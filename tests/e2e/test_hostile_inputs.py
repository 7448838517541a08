"""What a hostile sender tries against the app, in process (tests/conftest.py ``start_app``,
its writer running): inputs that used to fill memory, answer 500 or keep what should not be
kept. Each test failed before its fix; where the process itself matters (connections,
timeouts, a server's memory), tests/e2e/test_server_limits.py uses a real server."""

from __future__ import annotations

import gc
import secrets
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import AppServer, start_app

pytestmark = pytest.mark.e2e


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AppServer]:
    found = start_app(tmp_path / "data")
    yield found
    found.stop()


# -- memory: secrets of any size are not remembered ------------------------------------------
def _retained_after(send: object, times: int) -> int:
    """Bytes still allocated after ``times`` calls of ``send`` (each with a new secret)."""
    assert callable(send)
    send(0)  # warm up: lazily built routes, caches of the app itself
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1, times + 1):
            send(i)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def _huge_secret(size: int = 200_000) -> str:
    return "tp_write_" + secrets.token_hex(size // 2)


@pytest.mark.parametrize("where", ["authorization", "bearer", "write_key", "login"])
def test_unknown_keys_of_any_size_are_not_remembered(app: AppServer, where: str) -> None:
    """A key longer than a key can be (tp_<role>_ + 32 hex digits) is refused before it is
    hashed, and only keys that verify are cached: 30 requests with a new 200 KB secret each
    leave (nearly) nothing behind. Before, the collector's header cache and the key store's
    digest cache kept every secret they were shown (about 12 MB here)."""
    import base64

    def send(i: int) -> None:
        secret = _huge_secret()
        if where == "authorization":
            basic = base64.b64encode(f"{secret}:".encode()).decode()
            response = app.post(
                "/v1/track",
                json={"userId": "u", "event": "E"},
                headers={"Authorization": f"Basic {basic}"},
            )
            assert response.status_code == 401, response.text
        elif where == "bearer":
            with app.client(secret) as http:
                assert http.get("/v1/events/count").status_code == 401
        elif where == "write_key":
            body = {"batch": [{"type": "track", "userId": "u", "event": "E"}], "writeKey": secret}
            assert app.post("/v1/batch", json=body).status_code == 401
        else:  # under the form's limit (64 KB), so the key itself is checked
            response = app.post(
                "/login", data={"key": _huge_secret(50_000)}, follow_redirects=False
            )
            assert response.status_code == 401

    assert _retained_after(send, 30) < 1_000_000


def test_a_real_key_still_verifies_after_unknown_ones(app: AppServer) -> None:
    for _ in range(3):
        assert (
            app.post(
                "/v1/track", json={"userId": "u", "event": "E"}, auth=(_huge_secret(100), "")
            ).status_code
            == 401
        )
    response = app.post("/v1/track", json={"userId": "u", "event": "E"}, auth=(app.write_key, ""))
    assert response.status_code == 200


def test_a_login_form_larger_than_a_form_can_be_is_refused_413(app: AppServer) -> None:
    """The dashboard's forms are read up to 64 KB; a larger body is refused before it is
    parsed (it used to be read whole, whatever its size)."""
    response = app.post("/login", data={"key": "x" * 200_000}, follow_redirects=False)
    assert response.status_code == 413
    assert "64" in response.json()["detail"]


# -- answers that used to be 500 -------------------------------------------------------------
def test_an_empty_authorization_header_is_401_everywhere(app: AppServer) -> None:
    empty = {"Authorization": ""}
    response = app.post("/v1/track", json={"userId": "u", "event": "E"}, headers=empty)
    assert response.status_code == 401
    with app.client() as http:
        assert http.get("/v1/events/count", headers=empty).status_code == 401
        assert http.get("/v1/profiles/user_id:u", headers=empty).status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/static/missing.js",
        "/static/",
        "/static/vendor/",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/%2e%2e/%2e%2e/config.py",
        "/static/a%00b",
        "/static/app.css%00.js",
        "/static/vendor/..%2f..%2fapp.py",
    ],
)
def test_a_missing_static_file_is_404(app: AppServer, path: str) -> None:
    with app.client() as http:
        response = http.get(path)
    assert response.status_code == 404, (path, response.status_code, response.text)


def test_static_files_are_still_served(app: AppServer) -> None:
    with app.client() as http:
        response = http.get("/static/app.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")


_EDGES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59.999999",
    "9999-12-31T23:59:59+00:00",
]


@pytest.mark.parametrize("edge", _EDGES)
@pytest.mark.parametrize("name", ["since", "until"])
def test_dates_at_the_ends_of_the_calendar_are_answered_not_500(
    app: AppServer, name: str, edge: str
) -> None:
    """A date whose offset takes it out of range in UTC is a 422 naming the parameter;
    one in range (however far) is an answer."""
    out_of_range = edge.endswith(("+14:00", "-14:00"))
    batch = [
        {"type": "track", "userId": "u1", "event": name, "properties": {"utm_source": "x"}}
        for name in ("a", "b", "Purchase")
    ]
    assert app.post("/v1/batch", json={"batch": batch}, auth=(app.write_key, "")).is_success
    app.wait_idle()
    with app.client() as http:
        for path in ("/v1/events", "/v1/events/count"):
            response = http.get(path, params={name: edge})
            assert response.status_code == (422 if out_of_range else 200), response.text
            if out_of_range:
                assert response.json()["detail"].startswith(f"{name}: ")
        for kind, extra in [
            ("journey_map", {}),
            ("funnel", {"steps": [{"event": "a"}, {"event": "b"}]}),
            ("channel_mix", {}),
            ("paths", {}),
            ("attribution", {}),
        ]:
            response = http.post("/v1/journeys/query", json={"kind": kind, name: edge, **extra})
            assert response.status_code in ((422,) if out_of_range else (200, 422)), (
                kind,
                response.text,
            )
            if out_of_range:
                assert name in response.json()["detail"], response.text
        response = http.post("/v1/journeys/query", json={"kind": "retention", "as_of": edge})
        assert response.status_code in (200, 422), response.text


@pytest.mark.parametrize("order", ["relaxed", "strict"])
def test_funnels_and_drop_offs_of_20_steps_answer(app: AppServer, order: str) -> None:
    """The documented limit (20 steps) is answered, in either order; 21 is a 422."""
    steps = [{"event": f"e{i % 7}"} for i in range(20)]
    with app.client() as http:
        response = http.post(
            "/v1/journeys/query", json={"kind": "funnel", "steps": steps, "order": order}
        )
        assert response.status_code == 200, response.text
        assert len(response.json()["steps"]) == 20
        funnel = {"steps": steps, "order": order}
        response = http.post(
            "/v1/journeys/query", json={"kind": "drop_offs", "funnel": funnel, "step": 19}
        )
        assert response.status_code == 200, response.text
        response = http.post(
            "/v1/journeys/query", json={"kind": "funnel", "steps": [*steps, {"event": "x"}]}
        )
        assert response.status_code == 422
        assert "at most 20 steps" in response.json()["detail"]
