"""The Destinations page, in process: destinations with their counts, dead letters and
deliveries for a session that may see persons, replay and disable for admins (with the
form's token, audited), in English and German."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import AppServer, dashboard_sign_in, start_app
from receiver import receiver


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AppServer]:
    found = start_app(tmp_path / "data", destinations_allow_private=True)
    yield found
    found.stop()


def test_the_page_shows_dead_letters_and_an_admin_replays_them(app: AppServer) -> None:
    with receiver() as hook:
        hook.answer = lambda _: (400, {})
        made = app.tp.destinations.create("webhook", "crm", {"url": hook.url}, [])
        destination = made.destination.id
        app.tp.destinations.test(destination)
        deadline = time.monotonic() + 10
        while not app.tp.destinations.messages(destination, "dead").messages:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with app.client(app.admin_key()) as http:
            assert dashboard_sign_in(http, app.admin_key()).status_code == 303
            page = http.get("/destinations")
            assert page.status_code == 200
            assert 'data-destination="1"' in page.text and "crm" in page.text
            assert made.secrets["secret"] not in page.text
            assert "HTTP 400" in page.text  # the dead letter's error
            assert "<script>" not in page.text and "style=" not in page.text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf
            assert http.post(f"/destinations/{destination}/replay", data={}).status_code == 403
            hook.answer = lambda _: (200, {})
            done = http.post(
                f"/destinations/{destination}/replay",
                data={"csrf": csrf[1]},
                follow_redirects=False,
            )
            assert done.status_code == 303
            hook.wait_for(2)
            disabled = http.post(
                f"/destinations/{destination}/disable",
                data={"csrf": csrf[1]},
                follow_redirects=True,
            )
            assert "is disabled" in disabled.text
            http.get("/language/de", follow_redirects=True)
            german = http.get("/destinations")
            assert "Ziele" in german.text and "gesperrt" in german.text
        app.tp.audit.flush()
        actions = [line.action for line in app.tp.audit.page(limit=50).lines]
        assert "destination.replay" in actions and "destination.disable" in actions
