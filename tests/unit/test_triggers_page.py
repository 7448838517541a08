"""The Triggers page, in process: an admin writes a trigger (a mistake shown with its place,
what was written kept), changes and deletes it, with the form's token, audited; the recent
firings for sessions that may see persons; in English and German."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import AppServer, dashboard_sign_in, start_app

DEFINITION = """\
key: viewed
name: Viewed twice
when:
  event: Product Viewed
steps:
  - send: {destination}
limit: {{times: 1, per: 1d}}
"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AppServer]:
    found = start_app(tmp_path / "data", audiences_live=False)
    yield found
    found.stop()


def _csrf(text: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', text)
    assert found
    return found[1]


def _form(http: Any, path: str, **fields: str) -> Any:
    return http.post(path, data=fields, follow_redirects=False)


def test_an_admin_writes_changes_and_deletes_a_trigger(app: AppServer) -> None:
    hook = app.tp.destinations.create("webhook", "crm", {"url": "https://example.com/h"}, [])
    definition = DEFINITION.format(destination=hook.destination.id)
    with app.client(app.admin_key()) as http:
        assert dashboard_sign_in(http, app.admin_key()).status_code == 303
        page = http.get("/triggers")
        assert page.status_code == 200 and 'id="editor"' in page.text
        assert "<script>" not in page.text and "style=" not in page.text
        csrf = _csrf(page.text)
        assert _form(http, "/triggers/save", definition=definition).status_code == 403
        wrong = definition.replace("send: 1", "send: 7")
        refused = _form(http, "/triggers/save", csrf=csrf, definition=wrong)
        assert refused.status_code == 422
        assert "steps[0].send: no destination 7" in refused.text
        assert "send: 7" in refused.text  # what was written stays in the editor
        saved = _form(http, "/triggers/save", csrf=csrf, definition=definition)
        assert saved.status_code == 303, saved.text
        assert saved.headers["location"] == "/triggers?done=create&key=viewed"
        for n in range(3):
            answer = app.post(
                "/v1/track",
                json={"userId": "anna", "event": "Product Viewed", "messageId": f"v{n}"},
                auth=(app.write_key, ""),
            )
            assert answer.status_code == 200
        app.wait_idle()
        deadline = time.monotonic() + 15
        while app.tp.triggers.get("viewed").fired != 1:
            assert time.monotonic() < deadline, "the trigger did not fire"
            time.sleep(0.05)
        shown = http.get("/triggers?done=create&key=viewed")
        assert 'id="trigger-notice"' in shown.text and 'data-fired="1"' in shown.text
        assert 'id="firings"' in shown.text and "person:" in shown.text
        editing = http.get("/triggers?edit=viewed")
        assert 'name="original" value="viewed"' in editing.text
        changed = _form(
            http,
            "/triggers/save",
            csrf=csrf,
            original="viewed",
            definition=definition.replace("Viewed twice", "Viewed again"),
        )
        assert changed.status_code == 303
        assert app.tp.triggers.get("viewed").name == "Viewed again"
        german = http.get("/triggers", headers={"accept-language": "de-DE,de;q=0.9"})
        assert "Auslöser" in german.text and "Letzte Auslösungen" in german.text
        assert "Ereignis Product Viewed → an Ziel 1 senden (höchstens 1 je 1d)" in german.text
        assert "event Product Viewed → send to destination 1 (at most 1 per 1d)" in shown.text
        deleted = _form(http, "/triggers/viewed/delete", csrf=csrf)
        assert deleted.status_code == 303
        assert app.tp.triggers.listing().triggers == []
    app.tp.audit.flush()
    actions = [line.action for line in app.tp.audit.page(limit=50).lines]
    assert {"trigger.create", "trigger.change", "trigger.delete", "profile.list"} <= set(actions)


def test_a_viewer_sees_triggers_but_neither_firings_nor_the_editor(app: AppServer) -> None:
    app.tp.users.create("vera", "viewer", "a long enough password 1")
    with app.client() as http:
        csrf = _csrf(http.get("/login").text)
        signed = _form(http, "/login", csrf=csrf, name="vera", password="a long enough password 1")
        assert signed.status_code == 303, signed.text
        page = http.get("/triggers")
        assert page.status_code == 200
        assert 'id="editor"' not in page.text and 'id="firings"' not in page.text
