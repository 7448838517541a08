"""The Audiences and Computed traits pages, in process: the builder's preview count and its
mistakes with their place, saving, an audience's size over time (its table and CSV), its
members for sessions that may see persons, changes for admins only (with the form's token,
audited), the profile's computed traits and audiences, in English and German."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import AppServer, dashboard_sign_in, start_app

DEFINITION = """\
key: keen
name: Keen viewers
condition:
  event: Product Viewed
  at_least: 2
"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AppServer]:
    found = start_app(tmp_path / "data", audiences_live=False)
    for n, user in enumerate(("anna", "anna", "ben")):
        answer = found.post(
            "/v1/track",
            json={"userId": user, "event": "Product Viewed", "messageId": f"v{n}",
                  "properties": {"model": "E3" if n else "E5"}},
            auth=(found.write_key, ""),
        )  # fmt: skip
        assert answer.status_code == 200
    found.wait_idle()
    yield found
    found.stop()


def _csrf(text: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', text)
    assert found
    return found[1]


def _form(http: Any, path: str, **fields: str) -> Any:
    return http.post(path, data=fields, follow_redirects=False)


def test_an_admin_previews_saves_and_sees_an_audience(app: AppServer) -> None:
    with app.client(app.admin_key()) as http:
        assert dashboard_sign_in(http, app.admin_key()).status_code == 303
        page = http.get("/audiences")
        assert page.status_code == 200 and 'id="builder"' in page.text
        assert "<script>" not in page.text and "style=" not in page.text
        assert 'data-snippet="event: Configuration Saved' in page.text
        csrf = _csrf(page.text)
        preview = _form(http, "/audiences/preview", csrf=csrf, definition=DEFINITION)
        assert preview.status_code == 200
        assert 'data-size="1"' in preview.text and "1 of 2 persons" in preview.text
        bare = _form(http, "/audiences/preview", csrf=csrf, definition="event: Product Viewed")
        assert 'data-size="2"' in bare.text
        wrong = _form(http, "/audiences/preview", csrf=csrf, definition="event: X\nat_least: -1")
        assert 'id="preview-error"' in wrong.text and "condition.event.at_least" in wrong.text
        broken = _form(http, "/audiences/preview", csrf=csrf, definition="a: [1,")
        assert 'id="preview-error"' in broken.text and "line 1" in broken.text
        bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"  # the "billion laughs", small
        refused = _form(http, "/audiences/preview", csrf=csrf, definition=bomb)
        assert "aliases (*name) are not taken" in refused.text
        assert _form(http, "/audiences/new", definition=DEFINITION).status_code == 403
        refused = _form(http, "/audiences/new", csrf=csrf, definition="key: k\nname: n")
        assert refused.status_code == 422 and "condition: Field required" in refused.text
        assert "key: k" in refused.text  # what was written stays in the builder
        saved = _form(http, "/audiences/new", csrf=csrf, definition=DEFINITION)
        assert (
            saved.status_code == 303 and saved.headers["location"] == "/audiences/keen?done=create"
        )
        shown = http.get("/audiences/keen?done=create")
        assert 'id="audience-size" data-size="1"' in shown.text
        assert 'href="/people/person:1"' in shown.text  # anna, a member
        assert "saved and evaluated" in shown.text
        csv = http.get("/audiences/keen?csv=sizes")
        assert csv.status_code == 200 and csv.text.splitlines()[0] == "day,members,entered,exited"
        assert csv.text.splitlines()[1].endswith(",1,1,0")
        listing = http.get("/audiences")
        assert 'data-audience="keen"' in listing.text and 'data-size="1"' in listing.text
        changed = _form(
            http,
            "/audiences/keen/change",
            csrf=csrf,
            definition=DEFINITION.replace("at_least: 2", "at_least: 1"),
        )
        assert changed.status_code == 303
        assert 'data-size="2"' in http.get("/audiences/keen").text
        person = http.get("/people/user_id:anna")
        assert 'data-audience="keen"' in person.text
        http.get("/language/de")
        german = http.get("/audiences/keen")
        assert "Mitglieder" in german.text and "Eintritte und Austritte" in german.text
        assert http.get("/audiences/nothing").status_code == 404
        http.get("/language/en")
        gone = _form(http, "/audiences/keen/delete", csrf=csrf)
        assert gone.status_code == 303
        assert 'data-audience="keen"' not in http.get("/audiences").text
    app.tp.audit.flush()
    actions = {line.action for line in app.tp.audit.page(limit=100).lines}
    assert {"audience.create", "audience.change", "audience.delete", "profile.list"} <= actions


def test_a_viewer_sees_sizes_but_neither_members_nor_the_builder(app: AppServer) -> None:
    app.tp.audiences.create(
        {"key": "keen", "name": "Keen", "condition": {"event": "Product Viewed"}}
    )
    app.tp.users.create("vera", "viewer", "a long enough password 1")
    with app.client() as http:
        login = _csrf(http.get("/login").text)
        signed = _form(http, "/login", csrf=login, name="vera", password="a long enough password 1")
        assert signed.status_code == 303
        page = http.get("/audiences/keen")
        assert page.status_code == 200 and 'data-size="2"' in page.text
        assert 'id="members"' not in page.text and 'id="change"' not in page.text
        assert 'id="builder"' not in http.get("/audiences").text
        assert http.post("/audiences/keen/delete", data={}).status_code == 403


def test_computed_traits_page_and_profile(app: AppServer) -> None:
    with app.client(app.admin_key()) as http:
        assert dashboard_sign_in(http, app.admin_key()).status_code == 303
        csrf = _csrf(http.get("/traits").text)
        definition = "key: models\nname: Models seen\nkind: unique\nproperty: model\n"
        saved = _form(http, "/traits/new", csrf=csrf, definition=definition)
        assert saved.status_code == 303 and saved.headers["location"] == "/traits?show=models"
        page = http.get("/traits?show=models")
        assert 'data-trait="models"' in page.text and 'data-persons="2"' in page.text
        assert "unique values of model of every event, ever" in page.text
        assert "[&#34;E3&#34;,&#34;E5&#34;]" in page.text or '["E3","E5"]' in page.text
        wrong = _form(http, "/traits/new", csrf=csrf, definition="key: x\nname: x\nkind: sum")
        assert wrong.status_code == 422 and "property: a sum needs" in wrong.text
        person = http.get("/people/user_id:anna")
        assert 'data-trait="models"' in person.text and "E3, E5" in person.text
        gone = _form(http, "/traits/models/delete", csrf=csrf)
        assert gone.status_code == 303
        assert 'data-trait="models"' not in http.get("/traits").text


def test_an_admin_exports_an_audience_to_a_file_on_a_schedule(
    app: AppServer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    app.tp.audiences.create(
        {"key": "keen", "name": "Keen", "condition": {"event": "Product Viewed"}}
    )
    made = app.tp.destinations.create("file", "ads", {"directory": str(out)}, [])
    destination = str(made.destination.id)
    with app.client(app.admin_key()) as http:
        assert dashboard_sign_in(http, app.admin_key()).status_code == 303
        page = http.get("/audiences/keen")
        assert 'name="schedule"' in page.text and 'value="file"' in page.text
        csrf = _csrf(page.text)
        bad = _form(http, "/audiences/keen/send", csrf=csrf, destination=destination,
                    mode="file", schedule="now and then")  # fmt: skip
        assert bad.status_code == 422 and "schedule: &#39;now and then&#39; is not" in bad.text
        wrong = _form(http, "/audiences/keen/send", csrf=csrf, destination=destination,
                      mode="identify", schedule="")  # fmt: skip
        assert wrong.status_code == 422 and "mode: a file destination" in wrong.text
        sent = _form(http, "/audiences/keen/send", csrf=csrf, destination=destination,
                     mode="file", schedule="every 2 hours")  # fmt: skip
        assert sent.headers["location"] == "/audiences/keen?done=send-file"
        shown = http.get(sent.headers["location"])
        assert "written again on its schedule" in shown.text
        assert "a file, every 2 hours (UTC): 2 members at the last run" in shown.text
        now = _form(http, "/audiences/keen/export-now", csrf=csrf, destination=destination)
        assert now.headers["location"] == "/audiences/keen?done=export-now"
        http.get("/language/de")
        german = http.get("/audiences/keen")
        assert "Jetzt exportieren" in german.text and "eine Datei, every 2 hours" in german.text
        http.get("/language/en")
    (link,) = app.tp.audiences.get("keen").destinations
    assert (link.mode, link.sent, link.rows) == ("file", 2, 2)
    app.tp.audit.flush()
    actions = {line.action for line in app.tp.audit.page(limit=100).lines}
    assert {"audience.link", "audience.export"} <= actions
