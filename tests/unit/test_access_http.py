"""Access over HTTP, in process against a real DuckDB file: each key role and each user role
against representative API routes and dashboard pages (200 or 403), the sign-in form's CSRF
token and the forms' tokens, sign-in limits, the session cookie's Secure flag behind a
trusted proxy and not behind anyone else, and the audit lines that reads, changes and
sign-ins leave (never a password, an e-mail or a trait value)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from touchpoints.access.users import Passwords
from touchpoints.api.app import create_app
from touchpoints.cli.client import in_process_client
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints

PASSWORD = "correct horse battery"
ROLES = ("viewer", "analyst", "privacy_officer", "admin")


def _cheap(tp: Touchpoints) -> Touchpoints:
    """argon2id still, at its smallest cost: these tests sign in dozens of times (the
    recommended parameters cost about a second a hash here)."""
    tp.users.passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    return tp


@pytest.fixture
def tp(tmp_path: Path) -> Iterator[Touchpoints]:
    with Touchpoints(load_settings(tmp_path / "data")) as core:
        _cheap(core)
        outcome = core.judge(
            {
                "batch": [
                    {
                        "type": "identify",
                        "userId": "u-1",
                        "anonymousId": "a-1",
                        "messageId": "m-1",
                        "timestamp": "2026-11-01T10:00:00Z",
                        "traits": {"email": "anna.berg@example.com", "city": "Hamburg"},
                    }
                ]
            },
            "batch",
            source="access-test",
        )
        core.write_rows(outcome.rows)
        for role in ROLES:
            core.users.create(role.replace("_", "-"), role, PASSWORD)
        yield core


@pytest.fixture
def app(tp: Touchpoints) -> Any:
    return create_app(tp)


def _client(app: Any, key: str | None = None) -> httpx.Client:
    return in_process_client(app, key)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found[1]


def _sign_in(client: httpx.Client, name: str, password: str = PASSWORD, **headers: str) -> Any:
    form = client.get("/login", headers=headers)
    assert form.status_code == 200
    data = {"csrf": _csrf(form.text), "name": name, "password": password}
    return client.post("/login", data=data, headers=headers)


def _lines(tp: Touchpoints, action: str) -> list[Any]:
    return [line for line in tp.audit.page(action=action, limit=1000).lines]


# -- the role matrix -----------------------------------------------------------------------
API_ROUTES = {
    "collect": ("POST", "/v1/track"),
    "analytics": ("GET", "/v1/events/stats"),
    "profiles": ("GET", "/v1/profiles/user_id:u-1"),
    "admin": ("GET", "/v1/users"),
    "audit": ("GET", "/v1/audit"),
}
KEY_ALLOWS = {
    "write": {"collect"},
    "read": {"analytics", "profiles"},
    "admin": set(API_ROUTES),
}


@pytest.mark.parametrize("role", list(KEY_ALLOWS))
def test_each_key_role_reaches_exactly_its_routes(tp: Touchpoints, app: Any, role: str) -> None:
    _key, secret = tp.keys.create(role, f"{role} key")  # type: ignore[arg-type]
    with _client(app) as client:
        for permission, (method, path) in API_ROUTES.items():
            body = {"userId": "u-2", "event": "Seen"} if method == "POST" else None
            answer = client.request(
                method, path, json=body, headers={"Authorization": f"Bearer {secret}"}
            )
            # The collector answers as Segment's does: 401 for a key that may not send.
            refused = {401, 403} if permission == "collect" else {403}
            expected = {200} if permission in KEY_ALLOWS[role] else refused
            assert answer.status_code in expected, (role, path, answer.text)
        assert client.get("/v1/events/stats").status_code == 401  # no key at all


PAGES = {
    "analytics": "/",
    "profiles": "/people",
    "admin": "/users",
    "audit": "/audit",
}
USER_ALLOWS = {
    "viewer": {"analytics"},
    "analyst": {"analytics", "profiles"},
    "privacy_officer": {"profiles", "audit"},
    "admin": set(PAGES),
}


@pytest.mark.parametrize("role", ROLES)
def test_each_user_role_opens_exactly_its_pages(app: Any, role: str) -> None:
    with _client(app) as client:
        signed_in = _sign_in(client, role.replace("_", "-"))
        assert signed_in.status_code == 303, signed_in.text
        for permission, path in PAGES.items():
            answer = client.get(path)
            expected = 200 if permission in USER_ALLOWS[role] else 403
            assert answer.status_code == expected, (role, path)
            if expected == 403:
                assert "does not allow this" in answer.text
        # The navigation offers only what the role may open.
        nav = client.get("/people" if role != "viewer" else "/").text
        assert ('href="/users"' in nav) == (role == "admin")
        assert ('href="/audit"' in nav) == (role in ("admin", "privacy_officer"))


def test_only_privacy_officers_and_admins_hold_privacy_and_audit() -> None:
    from touchpoints.access.roles import KEY_PERMISSIONS, USER_PERMISSIONS

    assert {r for r, p in USER_PERMISSIONS.items() if "privacy" in p} == {
        "privacy_officer",
        "admin",
    }
    assert {r for r, p in USER_PERMISSIONS.items() if "audit" in p} == {"privacy_officer", "admin"}
    assert {r for r, p in KEY_PERMISSIONS.items() if {"privacy", "audit"} & p} == {"admin"}


# -- signing in ------------------------------------------------------------------------------
def test_sign_in_needs_the_forms_csrf_token(tp: Touchpoints, app: Any) -> None:
    with _client(app) as client:
        form = client.get("/login")
        token = _csrf(form.text)
        fields = {"name": "admin", "password": PASSWORD}
        assert client.post("/login", data=fields).status_code == 403
        assert client.post("/login", data={**fields, "csrf": token + "x"}).status_code == 403
        # A token of another browser (no cookie of its own) is refused too.
        with _client(app) as other:
            assert other.post("/login", data={**fields, "csrf": token}).status_code == 403
        signed_in = client.post("/login", data={**fields, "csrf": token})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
    (cookie,) = [c.lower() for c in signed_in.headers.get_list("set-cookie") if "tp_session" in c]
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie  # plain http, no trusted proxy
    assert [line.actor for line in _lines(tp, "signin.success")] == [tp.users.get("admin").id]


def test_forms_of_a_session_need_its_csrf_token(tp: Touchpoints, app: Any) -> None:
    with _client(app) as client:
        assert _sign_in(client, "admin").status_code == 303
        page = client.get("/users")
        csrf = _csrf(page.text)
        assert "<style" not in page.text  # its styles are a file (a CSP allows no inline style)
        assert client.get("/static/pages/users.css").status_code == 200
        assert client.get("/static/pages/audit.css").status_code == 200
        new = {"name": "bert", "role": "viewer", "password": PASSWORD, "password_again": PASSWORD}
        assert client.post("/users/new", data=new).status_code == 403
        assert client.post("/users/new", data={**new, "csrf": "guessed"}).status_code == 403
        assert tp.users.find("bert") is None
        made = client.post("/users/new", data={**new, "csrf": csrf})
        assert made.status_code == 303 and tp.users.get("bert").role == "viewer"
        role = client.post("/users/bert/role", data={"role": "analyst", "csrf": csrf})
        assert role.status_code == 303 and tp.users.get("bert").role == "analyst"
        assert client.post("/users/bert/disable", data={"csrf": "x"}).status_code == 403
        assert client.post("/users/bert/disable", data={"csrf": csrf}).status_code == 303
        assert not tp.users.get("bert").enabled
        assert client.post("/logout", data={"csrf": csrf}).status_code == 303
        assert client.get("/users").status_code == 303  # to the login again
    bert = tp.users.get("bert").id
    assert [(line.action, line.target) for line in _lines(tp, "user.")] == [
        ("user.disable", f"user:{bert}"),
        ("user.role", f"user:{bert}"),
        ("user.create", f"user:{bert}"),
    ]


def test_a_disabled_user_or_a_changed_role_ends_the_session(tp: Touchpoints, app: Any) -> None:
    with _client(app) as client:
        assert _sign_in(client, "analyst").status_code == 303
        assert client.get("/people").status_code == 200
        tp.users.set_role("analyst", "viewer")
        assert client.get("/people").status_code == 303
        assert _sign_in(client, "analyst").status_code == 303
        assert client.get("/people").status_code == 403  # a viewer now
        tp.users.disable("analyst")
        assert client.get("/").status_code == 303
        refused = _sign_in(client, "analyst")
        assert refused.status_code == 401 and "the name or the password is wrong" in refused.text


def test_sign_ins_are_limited_per_name_and_recorded_without_the_password(
    tp: Touchpoints, app: Any
) -> None:
    with _client(app) as client:
        for _attempt in range(10):
            wrong = _sign_in(client, "viewer", "not the password at all")
            assert wrong.status_code == 401
            assert "the name or the password is wrong" in wrong.text
        unknown = _sign_in(client, "nobody", "not the password at all")
        assert unknown.status_code == 429  # the address is limited now too
        locked = _sign_in(client, "viewer")  # the right password, too late
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert "too many failed sign-ins" in locked.text
    viewer = tp.users.get("viewer")
    failures = _lines(tp, "signin.failure")
    assert len(failures) == 10
    assert {(line.actor, line.target, line.detail) for line in failures} == {
        ("anonymous", f"user:{viewer.id}", "wrong password")
    }
    assert {line.target for line in _lines(tp, "signin.locked")} == {
        f"user:{viewer.id}",
        "user:unknown",
    }
    stored = str(tp.warehouse.fetchall("SELECT * FROM audit_log"))
    assert "not the password" not in stored and PASSWORD not in stored and "nobody" not in stored


def test_an_unknown_name_is_refused_as_a_wrong_password_is(app: Any) -> None:
    with _client(app) as client:
        unknown = _sign_in(client, "nobody", PASSWORD)
        wrong = _sign_in(client, "viewer", PASSWORD + "!")
    assert unknown.status_code == wrong.status_code == 401
    assert "the name or the password is wrong" in unknown.text
    assert "the name or the password is wrong" in wrong.text


# -- behind a reverse proxy ------------------------------------------------------------------
@pytest.mark.parametrize("trusted", [True, False])
def test_the_cookie_is_secure_only_when_a_trusted_proxy_says_https(
    tmp_path: Path, trusted: bool
) -> None:
    # The in-process client's peer address is 127.0.0.1 (httpx's ASGI transport).
    settings = load_settings(
        tmp_path / "data", trusted_proxies=["127.0.0.1/32"] if trusted else ["10.9.8.7"]
    )
    with Touchpoints(settings) as tp:
        _cheap(tp).users.create("admin", "admin", PASSWORD)
        forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        with _client(create_app(tp)) as client:
            form = client.get("/login", headers=forwarded)
            login_cookie = form.headers["set-cookie"]
            token = login_cookie.split(";")[0].partition("=")[2]
            # A Secure cookie is not sent back over http: the proxy's browser gets https.
            signed_in = client.post(
                "/login",
                data={"csrf": _csrf(form.text), "name": "admin", "password": PASSWORD},
                headers={**forwarded, "Cookie": f"tp_login={token}"},
            )
        assert signed_in.status_code == 303
        assert ("; secure" in login_cookie.lower()) == trusted
        (cookie,) = [c for c in signed_in.headers.get_list("set-cookie") if "tp_session=" in c]
        assert ("; secure" in cookie.lower()) == trusted
        (line,) = _lines(tp, "signin.success")
        assert line.origin == ("203.0.113.9" if trusted else "127.0.0.1")


# -- what the audit log records ---------------------------------------------------------------
def test_profile_reads_over_the_api_and_the_dashboard_are_recorded_by_number(
    tp: Touchpoints, app: Any
) -> None:
    key, secret = tp.keys.create("read", "call centre")
    with _client(app, secret) as api:
        person = api.get("/v1/profiles/email:anna.berg@example.com").json()["person"]
        assert api.get(f"/v1/profiles/{person}/timeline").status_code == 200
        assert api.get(f"/v1/profiles/{person}/merges").status_code == 200
        assert api.get(f"/v1/journeys/stages/{person}").status_code == 200
        assert api.get("/v1/profiles", params={"trait": "city", "value": "hamburg"}).is_success
    with _client(app) as browser:
        assert _sign_in(browser, "analyst").status_code == 303
        assert browser.get(f"/people/{person}").status_code == 200
    analyst = tp.users.get("analyst").id
    lines = [(line.actor, line.action, line.target) for line in tp.audit.page(limit=100).lines]
    assert (key.id, "profile.read", person) in lines
    assert (key.id, "profile.timeline", person) in lines
    assert (key.id, "profile.merges", person) in lines
    assert (key.id, "profile.stages", person) in lines
    assert (key.id, "profile.search", person) in lines
    assert (analyst, "profile.read", person) in lines
    stored = str(tp.warehouse.fetchall("SELECT * FROM audit_log"))
    assert "anna" not in stored.lower() and "hamburg" not in stored.lower()


def test_key_and_user_changes_over_the_api_are_recorded(tp: Touchpoints, app: Any) -> None:
    admin, secret = tp.keys.create("admin", "ops")
    with _client(app, secret) as api:
        made = api.post("/v1/keys", json={"role": "read", "name": "bi"}).json()
        assert api.delete(f"/v1/keys/{made['id']}").is_success
        user = api.post(
            "/v1/users", json={"name": "carla", "role": "analyst", "password": PASSWORD}
        ).json()
        assert not {"password", "password_hash"} & set(user) and PASSWORD not in str(user)
        assert api.put("/v1/users/carla/role", json={"role": "viewer"}).json()["role"] == "viewer"
        assert api.post("/v1/users/carla/disable").json()["disabled_at"]
        short = api.put("/v1/users/carla/password", json={"password": "short"})
        assert short.status_code == 422
        # The last enabled admin stays.
        assert api.post("/v1/users/admin/disable").status_code == 409
        page = api.get("/v1/audit", params={"actor": admin.id, "limit": 50}).json()
        check = api.get("/v1/audit/verify").json()
    actions = [line["action"] for line in page["lines"]]
    assert actions == ["user.disable", "user.role", "user.create", "key.revoke", "key.create"]
    assert page["names"] == {admin.id: "ops", user["id"]: "carla", made["id"]: "bi"}
    assert check["ok"] is True and check["head_seq"] >= 5
    stored = str(tp.warehouse.fetchall("SELECT * FROM audit_log"))
    assert PASSWORD not in stored


def test_the_audit_page_shows_lines_filtered_and_the_chains_state(
    tp: Touchpoints, app: Any
) -> None:
    with _client(app) as client:
        assert _sign_in(client, "privacy-officer").status_code == 303
        page = client.get("/audit", params={"action": "signin."})
        assert page.status_code == 200 and 'data-seq="1"' in page.text
        assert "signin.success" in page.text
        intact = client.get("/audit", params={"verify": "1"})
        assert 'id="chain-ok"' in intact.text
        tp.warehouse.run("UPDATE audit_log SET detail = 'edited' WHERE seq = 1")
        broken = client.get("/audit", params={"verify": "1"})
        assert 'id="chain-broken"' in broken.text and "Broken at line 1" in broken.text
        assert client.get("/audit", params={"since": "yesterday"}).status_code == 422


def test_customer_values_are_escaped_on_the_person_page(tp: Touchpoints, app: Any) -> None:
    script = '<script>alert("x")</script>'
    outcome = tp.judge(
        {
            "batch": [
                {
                    "type": "identify",
                    "userId": "u-9",
                    "messageId": "m-9",
                    "timestamp": "2026-11-02T10:00:00Z",
                    "traits": {"city": script, "first_name": "<b>Eve</b>"},
                }
            ]
        },
        "batch",
        source="access-test",
    )
    tp.write_rows(outcome.rows)
    with _client(app) as client:
        assert _sign_in(client, "analyst").status_code == 303
        page = client.get("/people/user_id:u-9")
    assert page.status_code == 200
    assert script not in page.text and "<b>Eve</b>" not in page.text
    assert "&lt;script&gt;" in page.text


def test_lists_of_events_links_and_pairs_are_recorded_without_their_filters(
    tp: Touchpoints, app: Any
) -> None:
    key, secret = tp.keys.create("read", "bi")
    with _client(app, secret) as api:
        assert api.get("/v1/events", params={"user_id": "u-1"}).json()["events"]
        assert api.get("/v1/identity/links").is_success
        assert api.get("/v1/identity/reviews").is_success
    lines = {line.action: line for line in tp.audit.page(actor=key.id).lines}
    assert lines["events.read"].detail == "1 events"
    assert lines["identity.read_links"].detail == "0 links"
    assert lines["identity.read_reviews"].detail == "0 pairs, review"
    assert "u-1" not in str(tp.warehouse.fetchall("SELECT * FROM audit_log"))


def test_the_persons_of_a_drop_off_list_are_recorded(tp: Touchpoints, app: Any) -> None:
    viewed = {
        "type": "track",
        "userId": "u-1",
        "event": "Product Viewed",
        "messageId": "m-2",
        "timestamp": "2026-11-01T10:05:00Z",
    }
    tp.write_rows(tp.judge({"batch": [viewed]}, "batch", source="access-test").rows)
    key, secret = tp.keys.create("read", "bi")
    steps = {"steps": [{"event": "Product Viewed"}, {"event": "Order Completed"}]}
    with _client(app, secret) as api:
        dropped = api.post("/v1/journeys/funnels/drop-offs", params={"step": 1}, json=steps)
    assert dropped.status_code == 200, dropped.text
    persons = {f"person:{unit['person']}" for unit in dropped.json()["units"]}
    assert persons
    listed = tp.audit.page(actor=key.id, action="profile.list").lines
    assert {line.target for line in listed} == persons


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/people?q=city%3DHamburg", "/people?q=city%3DHamburg"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("/\t/evil.example/", "/"),
        ("https://evil.example/", "/"),
        (None, "/"),
    ],
)
def test_the_login_goes_back_only_to_a_path_on_this_site(
    app: Any, target: str | None, expected: str
) -> None:
    with _client(app) as client:
        form = client.get("/login")
        fields = {"csrf": _csrf(form.text), "name": "admin", "password": PASSWORD}
        params = {"next": target} if target is not None else {}
        signed_in = client.post("/login", params=params, data=fields)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == expected


def test_a_long_list_in_a_detail_is_cut_short() -> None:
    from touchpoints.access.audit import listed

    persons = [f"person:{n}" for n in range(1, 64)]
    assert listed(persons[:2]) == "person:1, person:2"
    assert listed(persons).endswith("person:10 and 53 more")
    assert len(f"detached an identifier of type email; now {listed(persons)}") < 300
