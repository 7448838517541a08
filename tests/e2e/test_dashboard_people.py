"""The People pages in a real browser (Debian's chromium, driven by Playwright) against a real
server on demo data: search by e-mail and by trait, the 360° profile showing what the API
says, and unmerging a link as an admin (a read session cannot). Fixtures: tests/conftest.py."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from e2e_browser import admin_key, chart_option, screenshot, sign_in

from conftest import Server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def links(demo_server: Server) -> list[dict[str, Any]]:
    """Links in force after probabilistic matching on the demo data (run once, as an admin)."""
    admin = {"Authorization": f"Bearer {admin_key(demo_server)}"}
    with httpx.Client(base_url=demo_server.url, headers=admin, timeout=60) as api:
        assert api.post("/v1/identity/match").status_code == 200
        found = api.get("/v1/identity/links", params={"limit": 1000}).json()["links"]
    assert len(found) >= 3
    return found


def _open(browser: Any, server: Server, key: str, **viewport: int) -> tuple[Any, Any]:
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, server, key)
    page.wait_for_selector("h1:text('Overview')")
    return context, page


def _person_with(api: httpx.Client, trait: str, value: str, id_type: str) -> dict[str, Any]:
    for key in api.get("/v1/profiles", params={"trait": trait, "value": value}).json()["persons"]:
        profile = api.get(f"/v1/profiles/{key}").json()
        if profile["identifiers"].get(id_type):
            return profile
    raise AssertionError(f"no person with {trait}={value} and a {id_type}")


def test_search_by_email_and_by_trait_reaches_the_profile(
    demo_server: Server, browser: Any
) -> None:
    with demo_server.client() as api:
        person = _person_with(api, "city", "Hamburg", "email")
        in_hamburg = api.get("/v1/profiles", params={"trait": "city", "value": "hamburg"}).json()
    email = person["identifiers"]["email"][0]["value"]
    context, page = _open(browser, demo_server, demo_server.read_key)
    page.click("nav >> text=People")
    page.wait_for_selector("h1:text('People')")
    # A bare e-mail address (in capitals: the identifier's normal form is found) …
    page.fill("input[name=q]", email.upper())
    page.click("form.search button")
    page.wait_for_selector("#results")
    assert page.locator("#results tbody tr").count() == 1
    page.click(f"#results a:text('{person['person']}')")
    page.wait_for_selector("h1#person")
    assert page.inner_text("h1#person") == person["person"]
    assert page.url.endswith(f"/people/{person['person']}")
    # … and the same as email:…
    page.goto(f"{demo_server.url}/people?q=email:{email}")
    assert page.locator("#results a").all_inner_texts() == [person["person"]]
    # A trait search lists everyone the API finds, the person among them.
    page.goto(f"{demo_server.url}/people")
    page.fill("input[name=q]", "city=hamburg")
    page.click("form.search button")
    page.wait_for_selector("#results")
    listed = page.locator("#results tbody td:first-child a").all_inner_texts()
    assert listed == in_hamburg["persons"] and person["person"] in listed
    screenshot(page, "people")
    page.click(f"#results a:text-is('{person['person']}')")
    page.wait_for_selector("h1#person")
    assert page.inner_text("h1#person") == person["person"]
    # No match, and input that is neither: said on the page, never a traceback.
    page.goto(f"{demo_server.url}/people?q=email:nobody-here@example.org")
    assert "No match" in page.inner_text("p.no-match")
    bad = page.goto(f"{demo_server.url}/people?q=hello")
    assert bad.status == 422 and "TYPE:VALUE" in page.inner_text("p.error")
    bad = page.goto(f"{demo_server.url}/people?q=ci ty=Hamburg")
    assert bad.status == 422 and "not a trait name" in page.inner_text("p.error")
    missing = page.goto(f"{demo_server.url}/people/person:99999999")
    assert missing.status == 404 and "no person" in page.inner_text("p.error")
    context.close()


def test_the_profile_shows_what_the_api_says(
    demo_server: Server, browser: Any, links: list[dict[str, Any]]
) -> None:
    with demo_server.client() as api:
        # A person a link joined (its merge log names the link): the demo server is shared
        # with other modules, whose links may have joined persons that were one already.
        for link in links:
            key = link["person"]
            merges = api.get(f"/v1/profiles/{key}/merges").json()["merges"]
            if any(m["kind"] == "link" for m in merges):
                break
        else:
            raise AssertionError("no link joined two persons")
        profile = api.get(f"/v1/profiles/{key}").json()
        first = api.get(f"/v1/profiles/{key}/timeline", params={"limit": 25}).json()
        stages = api.get(f"/v1/journeys/stages/{key}").json()
    context, page = _open(browser, demo_server, demo_server.read_key)
    page.goto(f"{demo_server.url}/people/{key}")
    page.wait_for_selector("h1#person")
    # Identifiers grouped by type, as the API gives them.
    shown: dict[str, list[str]] = {}
    for item in page.locator("#identifiers li").all():
        id_type, _, value = item.get_attribute("data-identifier").partition(":")
        shown.setdefault(id_type, []).append(value)
    assert shown == {t: [i["value"] for i in found] for t, found in profile["identifiers"].items()}
    # Traits with their source and time.
    rows = [r.split("\t") for r in page.locator("#traits tbody tr").all_inner_texts()]
    assert rows == [
        [name, str(t["value"]), t["source"], t["timestamp"][:16].replace("T", " ")]
        for name, t in profile["traits"].items()
    ]
    # The timeline, newest first, and its next page through the API's cursor.
    ids = page.locator("#timeline tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.messageId)"
    )
    assert ids == [e["message_id"] for e in first["events"]]
    if first["next"]:
        with demo_server.client() as api:
            second = api.get(
                f"/v1/profiles/{key}/timeline", params={"limit": 25, "before": first["next"]}
            ).json()
        page.click("#older")
        page.wait_for_url("**before=*")
        ids = page.locator("#timeline tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.messageId)"
        )
        assert ids == [e["message_id"] for e in second["events"]]
        page.goto(f"{demo_server.url}/people/{key}")
    # The merge log (newest first), with the link as evidence; a read session has no button.
    assert page.locator("#merges tr[data-kind]").evaluate_all(
        "rows => rows.map(r => r.dataset.kind)"
    ) == [m["kind"] for m in reversed(merges)]
    assert f"link {link['link_id']}: {link['a']} ~ {link['b']}" in page.inner_text("#merges")
    assert page.locator("form.undo").count() == 0
    # Stage and channels.
    assert page.inner_text("#current-stage") == (stages["current"] or "none yet")
    assert page.locator("#stages li").count() == len(stages["stages"])
    channels = {
        row.get_attribute("data-channel"): int(row.locator("td.num").inner_text().replace(",", ""))
        for row in page.locator("#channels tr").all()
    }
    assert channels == profile["computed"]["channels"]
    # The identity graph: one node per identifier, the link among its edges.
    series = chart_option(page, "identity-graph")["series"][0]
    nodes = [node["name"] for node in series["data"]]
    expected = [f"{t}:{i['value']}" for t, found in profile["identifiers"].items() for i in found]
    assert sorted(nodes) == sorted(expected) and len(set(nodes)) == len(nodes)
    edges = {(e["source"], e["target"]) for e in series["links"]}
    assert (link["a"], link["b"]) in edges
    assert edges and all(a in nodes and b in nodes for a, b in edges)
    screenshot(page, "profile")
    # On a tablet the page fits the width (nothing to scroll sideways).
    page.set_viewport_size({"width": 800, "height": 1100})
    page.wait_for_timeout(200)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    context.close()


def test_a_read_session_has_no_unmerge_and_a_forged_post_is_refused(
    demo_server: Server, browser: Any, links: list[dict[str, Any]]
) -> None:
    link = links[1]
    key = link["person"]
    context, page = _open(browser, demo_server, demo_server.read_key)
    page.goto(f"{demo_server.url}/people/{key}")
    page.wait_for_selector("#merges")
    assert page.locator("form.undo").count() == 0 and "Unmerge" not in page.inner_text("main")
    # A forged post from the read session, with or without a form token: refused.
    for form in ({"link": str(link["link_id"])}, {"link": str(link["link_id"]), "csrf": "x"}):
        refused = page.request.post(f"{demo_server.url}/people/{key}/unmerge", form=form)
        assert refused.status == 403
    context.close()
    # An admin session without its form token: refused too.
    context, page = _open(browser, demo_server, admin_key(demo_server))
    refused = page.request.post(
        f"{demo_server.url}/people/{key}/unmerge", form={"link": str(link["link_id"])}
    )
    assert refused.status == 403
    context.close()
    # Nothing changed: the link is in force and both ends are still one person.
    with demo_server.client() as api:
        now = api.get("/v1/identity/links", params={"limit": 1000}).json()["links"]
        assert link["link_id"] in [found["link_id"] for found in now]
        a = api.get(f"/v1/profiles/{link['a']}").json()["person"]
        b = api.get(f"/v1/profiles/{link['b']}").json()["person"]
    assert a == b == key


def test_an_admin_unmerges_a_link_and_the_persons_split(
    demo_server: Server, browser: Any, links: list[dict[str, Any]]
) -> None:
    link = links[2]
    key = link["person"]
    context, page = _open(browser, demo_server, admin_key(demo_server))
    page.goto(f"{demo_server.url}/people/{key}")
    page.wait_for_selector("#merges")
    form = page.locator(f"form.undo:has(input[name=link][value='{link['link_id']}'])")
    assert form.count() == 1
    form.locator("input[name=note]").fill("browser test")
    form.locator("button").click()
    page.wait_for_selector("#unmerged")
    # The API sees the split: the link is gone, and its two ends are two persons.
    with demo_server.client() as api:
        now = api.get("/v1/identity/links", params={"limit": 1000}).json()["links"]
        a = api.get(f"/v1/profiles/{link['a']}").json()
        b = api.get(f"/v1/profiles/{link['b']}").json()
        merges = api.get(f"/v1/profiles/{key}/merges").json()["merges"]
    assert link["link_id"] not in [found["link_id"] for found in now]
    assert a["person"] != b["person"]
    # The page says so, names both persons, and the profile is the one after the split.
    notice = page.inner_text("#unmerged")
    assert f"link {link['link_id']}" in notice
    assert sorted(page.locator("#unmerged a").all_inner_texts()) == sorted(
        [a["person"], b["person"]]
    )
    assert page.inner_text("h1#person") == key
    mine = a if a["person"] == key else b
    shown = page.locator("#identifiers li").evaluate_all(
        "items => items.map(i => i.dataset.identifier)"
    )
    assert sorted(shown) == sorted(
        f"{t}:{i['value']}" for t, found in mine["identifiers"].items() for i in found
    )
    assert merges[-1]["kind"] == "unmerge" and merges[-1]["note"] == "browser test"
    assert page.locator("#merges tbody tr").first.get_attribute("data-kind") == "unmerge"
    # The other part is a profile of its own.
    other = b if mine is a else a
    page.click(f"#unmerged a:text-is('{other['person']}')")
    page.wait_for_selector("h1#person")
    assert page.inner_text("h1#person") == other["person"]
    context.close()
