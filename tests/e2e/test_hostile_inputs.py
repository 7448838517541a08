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

from conftest import AppServer, dashboard_sign_in, start_app

pytestmark = pytest.mark.e2e


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AppServer]:
    # Not warming the assistant's model in the background: loading it allocates about 9 MB
    # in its own thread, which lands in a memory measurement below when the machine is slow.
    found = start_app(tmp_path / "data", assistant_warm=False)
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
        else:  # under the sign-in form's limit (4 KB), so the key itself is checked (and
            # after a few failures the sign-in limits answer 429 before any check)
            from touchpoints.cli.client import in_process_client

            with in_process_client(app.app) as browser:
                assert dashboard_sign_in(browser, _huge_secret(3_000)).status_code in (401, 429)

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
    """The sign-in form is read up to 4 KB (the other forms up to 64 KB); a larger body is
    refused before it is parsed (it used to be read whole, whatever its size)."""
    response = app.post("/login", data={"key": "x" * 200_000}, follow_redirects=False)
    assert response.status_code == 413
    assert "larger than 4096 bytes" in response.json()["detail"]


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


@pytest.mark.parametrize("offset", [2**63, 2**64, 10**30])
@pytest.mark.parametrize(
    "path", ["/v1/identity/links", "/v1/identity/reviews", "/v1/journeys/funnels/drop-offs"]
)
def test_offsets_past_64_bits_are_422_naming_the_offset(
    app: AppServer, path: str, offset: int
) -> None:
    with app.client() as http:
        if path.endswith("drop-offs"):
            funnel = {"steps": [{"event": "a"}, {"event": "b"}]}
            response = http.post(path, params={"step": 1, "offset": offset}, json=funnel)
        else:
            response = http.get(path, params={"offset": offset})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("offset:"), response.text


@pytest.mark.parametrize("number", [2**63, 2**64, -(2**64), 10**30])
def test_integers_past_64_bits_in_a_json_body_are_422_not_500(app: AppServer, number: int) -> None:
    """The refusal quotes what was sent: an integer orjson cannot write (past 64 bits) is
    quoted as text (it was a 500: the 422 itself could not be written)."""
    funnel = {"steps": [{"event": "a"}, {"event": "b"}]}
    asked = [
        {"kind": "drop_offs", "funnel": funnel, "step": 1, "offset": number},
        {"kind": "drop_offs", "funnel": funnel, "step": number},
        {"kind": "retention", "periods": number},
    ]
    with app.client() as http:
        for body in asked:
            response = http.post("/v1/journeys/query", json=body)
            assert response.status_code == 422, response.text
            assert str(number) in response.text


BAD_TRAITS = [".", "a.", ".a", "a..b", "a.b.", "a b", "é"]


@pytest.mark.parametrize("trait", BAD_TRAITS)
def test_a_trait_that_cannot_be_one_is_422_naming_it(app: AppServer, trait: str) -> None:
    with app.client() as http:
        response = http.get("/v1/profiles", params={"trait": trait, "value": "x"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("trait:"), response.text
    assert "is not a trait name" in response.json()["detail"]


def test_the_dashboard_people_search_refuses_such_traits_with_its_reason(app: AppServer) -> None:
    from touchpoints.cli.client import in_process_client

    with in_process_client(app.app) as browser:
        assert dashboard_sign_in(browser, app.read_key).status_code == 303
        for trait in BAD_TRAITS:
            page = browser.get("/people", params={"q": f"{trait}=x"})
            assert page.status_code == 422, (trait, page.status_code)
            assert "is not a trait name" in page.text, trait
        assert browser.get("/people", params={"q": "address.city=x"}).status_code == 200


# -- deep JSON: refused with its reason, quarantined, the rest of the batch stored -----------
def _nested(depth: int) -> str:
    """JSON text of an object nesting ``depth`` levels below the top (``{"x":{"x":…1}}``)."""
    return '{"x":' * depth + "1" + "}" * depth


def _held(app: AppServer) -> list[dict]:
    with app.client(app.admin_key()) as http:
        items = http.get("/v1/quarantine").json()["items"]
    assert isinstance(items, list)
    return items


@pytest.mark.parametrize("depth", [254, 300, 1000])
def test_a_deeply_nested_event_is_refused_and_quarantined_and_the_batch_kept(
    app: AppServer, depth: int
) -> None:
    """orjson reads 1,024 levels but writes 254: such an event used to answer 500 and lose
    the whole batch. Now it is refused (400 for it, with the depth in the reason), kept in
    the quarantine as sent, and the batch's other events are stored."""
    good = '{"type":"track","userId":"u","event":"Good","messageId":"good-1"}'
    deep = f'{{"type":"track","userId":"u","event":"Deep","properties":{_nested(depth)}}}'
    body = f'{{"batch":[{good},{deep}]}}'
    response = app.post(
        "/v1/batch",
        content=body,
        headers={"Content-Type": "application/json"},
        auth=(app.write_key, ""),
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["quarantined"]) == (1, 1)
    (problem,) = answer["rejected"][0]["errors"]
    assert answer["rejected"][0]["index"] == 1
    assert f"nests {depth + 1} levels deep" in problem["message"]
    assert "254" in problem["message"]
    app.wait_idle()
    assert app.count() == 1
    (item,) = _held(app)
    assert item["kind"] == "event"
    assert item["raw"].count('{"x":') == depth  # kept whole, as sent
    single = app.post(
        "/v1/track",
        content=deep,
        headers={"Content-Type": "application/json"},
        auth=(app.write_key, ""),
    )
    assert single.status_code == 400
    assert single.json()["quarantined"] == 1


def test_a_deeply_nested_batch_context_or_body_is_refused(app: AppServer) -> None:
    event = '{"type":"track","userId":"u","event":"E"}'
    for body in (
        f'{{"context":{_nested(400)},"batch":[{event}]}}',
        "[" * 400 + "]" * 400,
        f'{{"batch":{"[" * 400 + "]" * 400}}}',
    ):
        response = app.post(
            "/v1/batch",
            content=body,
            headers={"Content-Type": "application/json"},
            auth=(app.write_key, ""),
        )
        assert response.status_code == 400, response.text
        assert response.json()["quarantined"] == 1
    # The last is a batch whose one event is a deep array: that event is refused.
    assert [item["kind"] for item in _held(app)] == ["body", "body", "event"]
    app.wait_idle()
    assert app.count() == 0


def test_json_nested_10000_deep_is_400_and_held_bounded(app: AppServer) -> None:
    body = "[" * 10_000 + "]" * 10_000
    response = app.post(
        "/v1/batch",
        content=body,
        headers={"Content-Type": "application/json"},
        auth=(app.write_key, ""),
    )
    assert response.status_code == 400
    assert "depth limit" in response.json()["error"]
    (item,) = _held(app)
    assert len(item["raw"]) == len(body)  # the body as sent, no larger than the request


# -- times: clock-skew correction stays within the years events may have ---------------------
@pytest.mark.parametrize(
    ("timestamp", "sent_at"),
    [
        ("2200-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
        ("1970-01-01T00:00:00Z", "2200-12-31T00:00:00Z"),
    ],
)
def test_clock_skew_correction_that_leaves_1970_to_2200_is_refused(
    app: AppServer, timestamp: str, sent_at: str
) -> None:
    """timestamp 2200 with sentAt 1970 used to be stored as 2256: the correction (the
    server's time less the device's sentAt − timestamp) took it out of the years events may
    have. It is refused, naming both fields, rather than clamped: a clamped time would be
    made up, while the quarantined event can be replayed once the sender's clock is fixed."""
    event = {"userId": "u", "event": "E", "timestamp": timestamp, "sentAt": sent_at}
    response = app.post("/v1/track", json=event, auth=(app.write_key, ""))
    assert response.status_code == 400, response.text
    (problem,) = response.json()["errors"]
    assert problem["field"] == "timestamp"
    assert "sentAt" in problem["message"] and "1970 to 2200" in problem["message"]
    assert len(_held(app)) == 1


def test_clock_skew_correction_within_the_range_is_kept(app: AppServer) -> None:
    event = {
        "userId": "u",
        "event": "E",
        "timestamp": "2020-01-01T00:00:00Z",
        "sentAt": "2020-01-01T00:00:10Z",
    }
    assert app.post("/v1/track", json=event, auth=(app.write_key, "")).status_code == 200


# -- the quarantine keeps no write key -------------------------------------------------------
def test_a_write_key_is_scrubbed_from_a_quarantined_body(app: AppServer) -> None:
    key = app.write_key
    bodies = [
        f'{{"writeKey": "{key}", "userId": "u", "event": ',  # cut short: not JSON
        f'{{"writeKey":"{key}","batch":[{{"type":"track","userId":"u","event":"E"}}]',
        f'{{"userId":"u","event":"E","properties":{{"note":"{key}"}},',
        f'{{"writeKey" : "{key}',
    ]
    for body in bodies:
        response = app.post(
            "/v1/batch",
            content=body,
            headers={"Content-Type": "application/json"},
            auth=(key, ""),
        )
        assert response.status_code == 400
    held = _held(app)
    assert len(held) == len(bodies)
    for item in held:
        assert key not in item["raw"], item["raw"]
        assert key[:12] not in item["raw"]
    assert '"writeKey": "[removed]"' in held[0]["raw"]


def test_a_write_key_in_an_event_is_kept_from_the_quarantine(app: AppServer) -> None:
    key = app.write_key
    batch = {"batch": [{"type": "track", "userId": "u", "writeKey": key}]}  # no event name
    response = app.post("/v1/batch", json=batch, auth=(key, ""))
    assert response.status_code == 400
    (item,) = _held(app)
    assert key not in item["raw"]


# -- CSV downloads: no formula runs when a spreadsheet opens them ----------------------------
def test_csv_cells_that_a_spreadsheet_would_run_are_quoted() -> None:
    """OWASP's rule: a text cell starting with =, +, -, @, a tab or a carriage return gets a
    leading ' so a spreadsheet shows it as text. Numbers stay numbers, and so does text that
    is a plain number (-7, +3, -2.5e3): no spreadsheet runs it."""
    import csv
    import io

    from touchpoints.web.app import Shown, Table

    cells = [
        "=HYPERLINK(\"http://evil\")", "+SUM(A1)", "-1+2", "@cmd", "\tx", "\rx", "-",
        -5, -2.5, "-7", "+3", "-2.5e3", "plain", "a=b", Shown("=1+1", "label"), None,
    ]  # fmt: skip
    table = Table("t", "=title", ["=a", "b"], [cells])
    header, row = list(csv.reader(io.StringIO(table.csv())))
    assert header == ["'=a", "b"]
    assert row == [
        "'=HYPERLINK(\"http://evil\")", "'+SUM(A1)", "'-1+2", "'@cmd", "'\tx", "'\rx", "'-",
        "-5", "-2.5", "-7", "+3", "-2.5e3", "plain", "a=b", "'=1+1", "",
    ]  # fmt: skip


def test_a_dashboard_csv_from_a_crafted_link_holds_no_formula(app: AppServer) -> None:
    """A link can put any event name into a funnel, and so into its CSV download."""
    from touchpoints.cli.client import in_process_client

    with in_process_client(app.app) as http:
        assert dashboard_sign_in(http, app.read_key).status_code == 303
        response = http.get(
            "/journeys/funnels",
            params=[("step", '=HYPERLINK("http://evil","x")'), ("step", "b"), ("csv", "steps")],
        )
    assert response.status_code == 200, response.text
    assert '\'=HYPERLINK(""http://evil"",""x"")' in response.text
    assert ',"=HYPERLINK' not in response.text


# -- security headers ------------------------------------------------------------------------
def test_every_answer_carries_the_security_headers(app: AppServer) -> None:
    from touchpoints.cli.client import in_process_client

    answers = {
        "login page": app.post("/login", data={"key": "nope"}),
        "collector": app.post(
            "/v1/track", json={"userId": "u", "event": "E"}, auth=(app.write_key, "")
        ),
        "collector 401": app.post("/v1/track", json={}),
    }
    with app.client() as http:
        answers["api"] = http.get("/v1/events/count")
        answers["api 404"] = http.get("/v1/profiles/user_id:nobody")
        answers["api 422"] = http.get("/v1/events", params={"limit": "x"})
        answers["openapi"] = http.get("/openapi.json")
        answers["static"] = http.get("/static/app.js")
        answers["static 404"] = http.get("/static/nothing.css")
        answers["health"] = http.get("/health")
    with in_process_client(app.app) as browser:
        assert dashboard_sign_in(browser, app.read_key).status_code == 303
        for path in ("/", "/people", "/journeys/funnels", "/sources"):
            answers[path] = browser.get(path)
    for what, response in answers.items():
        headers = response.headers
        csp = headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, what
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, what
        assert headers["x-content-type-options"] == "nosniff", what
        assert headers["referrer-policy"] == "no-referrer", what
        assert "camera=()" in headers["permissions-policy"], what
        assert headers["x-frame-options"] == "DENY", what
        if what.startswith("static"):
            assert "no-store" not in headers.get("cache-control", ""), what
        else:
            assert headers["cache-control"] == "no-store", what
    assert answers["/"].status_code == 200


TEMPLATES = Path(__file__).parents[2] / "src" / "touchpoints" / "web" / "templates"


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_templates_have_no_inline_script_or_style(template: str) -> None:
    """What the CSP (script-src 'self'; style-src 'self') would block: inline scripts, event
    handler attributes, javascript: links, style attributes and <style> blocks."""
    import re

    text = (TEMPLATES / template).read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), "inline <script>"
    assert not re.search(r"\son[a-z]+\s*=", text, re.I), "an on…= handler"
    assert "javascript:" not in text.lower()
    assert not re.search(r"\sstyle\s*=", text, re.I), "a style attribute"
    assert "<style" not in text.lower(), "a <style> block"
