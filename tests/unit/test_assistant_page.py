"""The agent console (the Assistant page), in process: the queues, a handed-over
conversation beside the customer's summary and profile, a reply that reaches the customer's
poll, closing with an outcome (both with the form's token, audited), the figures; an agent
user may, an analyst may not; English and German; and the demo site with the widget."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from conftest import AppServer, dashboard_sign_in, start_app
from touchpoints.assist.verification import user_hash

SECRET = "the-demo-site-secret-0123"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    found = start_app(
        tmp_path_factory.mktemp("console") / "data",
        assistant_identity_secret=SECRET,
        assistant_demo_site=True,
    )
    with found.client(found.write_key) as client:
        client.post(
            "/v1/identify",
            json={
                "userId": "u-42",
                "traits": {"first_name": "Erika", "last_name": "Beispiel", "city": "Hamburg"},
            },
        )
    found.wait_idle()
    yield found
    found.stop()


def _handed_over(app: AppServer) -> str:
    with app.client(app.write_key) as widget:
        answer = widget.post(
            "/v1/assistant/messages",
            json={
                "text": "Bitte verbinden Sie mich mit einem Mitarbeiter",
                "user_id": "u-42",
                "user_hash": user_hash(SECRET, "u-42"),
            },
        ).json()
    assert answer["state"] == "queued"
    return str(answer["conversation"])


def test_an_agent_answers_in_the_console_and_the_customer_gets_it(app: AppServer) -> None:
    conversation = _handed_over(app)
    admin = app.admin_key()
    with app.client(admin) as http:
        assert dashboard_sign_in(http, admin).status_code == 303
        page = http.get("/assistant")
        assert page.status_code == 200
        assert 'data-team="support" class="has-waiting"' in page.text
        assert f'data-conversation="{conversation}"' in page.text
        assert "<script>" not in page.text and "style=" not in page.text
        chosen = http.get("/assistant", params={"conversation": conversation})
        assert 'id="summary-who">Erika Beispiel' in chosen.text
        assert 'data-trait="city"><td>city</td><td>Hamburg' in chosen.text
        assert "Bitte verbinden Sie mich mit einem Mitarbeiter" in chosen.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', chosen.text)
        assert csrf
        stale = http.post(f"/assistant/conversations/{conversation}/reply", data={"text": "x"})
        assert stale.status_code == 403
        sent = http.post(
            f"/assistant/conversations/{conversation}/reply",
            data={"csrf": csrf[1], "text": "Guten Tag, hier ist Max."},
            follow_redirects=False,
        )
        assert sent.status_code == 303
        fragment = http.get(f"/assistant/conversations/{conversation}/messages")
        assert 'data-author="agent"' in fragment.text and "hier ist Max" in fragment.text
    with app.client(app.write_key) as widget:
        polled = widget.get(
            f"/v1/assistant/conversations/{conversation}/messages", params={"after": 2}
        ).json()
    assert polled["messages"][-1]["author"] == "agent"
    assert polled["messages"][-1]["text"] == "Guten Tag, hier ist Max."
    with app.client(admin) as http:
        dashboard_sign_in(http, admin)
        csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/assistant").text)
        assert csrf
        closed = http.post(
            f"/assistant/conversations/{conversation}/close",
            data={"csrf": csrf[1], "outcome": "resolved"},
            follow_redirects=True,
        )
        assert 'id="closed-notice"' in closed.text and 'id="first-response"' in closed.text
        http.get("/language/de", follow_redirects=True)
        german = http.get("/assistant")
        assert "Warteschlangen" in german.text and "Gespräche" in german.text
    lines = app.tp.audit.page(limit=50).lines
    assert {"assistant.read", "assistant.reply", "assistant.close"} <= {
        line.action for line in lines
    }
    # The conversation's id reads it (with a site's public write key): never in the log.
    assert all(conversation not in (line.target or "") for line in lines)


def test_an_agent_user_may_open_the_console_and_an_analyst_may_not(app: AppServer) -> None:
    app.tp.users.create("maria", "agent", "a long password 1")
    app.tp.users.create("anton", "analyst", "a long password 2")
    for name, password, status in (
        ("maria", "a long password 1", 200),
        ("anton", "a long password 2", 403),
    ):
        with app.client() as http:
            form = http.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf
            http.post("/login", data={"csrf": csrf[1], "name": name, "password": password})
            assert http.get("/assistant").status_code == status


def test_the_demo_site_embeds_the_widget_and_signs_a_user_in(app: AppServer) -> None:
    with app.client() as http:
        site = http.get("/assistant/demo")
        assert site.status_code == 200
        assert (
            'src="/static/assistant/widget.js"' in site.text and 'data-key="tp_write_' in site.text
        )
        assert "data-user-id" not in site.text
        http.post("/assistant/demo/sign-in", data={"user_id": "u-42"})
        signed = http.get("/assistant/demo")
        assert 'data-user-id="u-42"' in signed.text
        assert f'data-user-hash="{user_hash(SECRET, "u-42")}"' in signed.text
        script = http.get("/static/assistant/widget.js")
        assert script.status_code == 200 and "ajs_anonymous_id" in script.text
