"""Users and the audit log in a real browser (Debian's chromium, driven by Playwright) against
the real demo server: users made with ``touchpoints users add`` through the running server
sign in with their passwords, an admin adds, changes and disables a user on the Users page,
the Audit page shows those changes and an intact chain, and a viewer is refused the admin's
pages. Fixtures: tests/conftest.py."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import Server, run_cli

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"


def _add(server: Server, name: str, role: str) -> None:
    added = run_cli("users", "add", name, "--role", role, "--password-stdin",
                    data_dir=server.data_dir, input=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr


def _sign_in(page: Any, server: Server, name: str, password: str = PASSWORD) -> None:
    page.goto(f"{server.url}/login")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("#user-login button[type=submit]")


def test_users_sign_in_and_an_admin_manages_users_and_reads_the_audit_log(
    demo_server: Server, browser: Any
) -> None:
    _add(demo_server, "ada", "admin")
    _add(demo_server, "vera", "viewer")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # "Disable bob?": yes
    _sign_in(page, demo_server, "ada", "not her password")
    assert page.inner_text("#user-login p.error") == "the name or the password is wrong"
    _sign_in(page, demo_server, "ada")
    page.wait_for_selector("h1:text('Overview')")
    assert "ada" in page.inner_text(".who")
    assert page.locator("nav a[href='/users']").count() == 1
    # Add bob, make him a viewer, disable him.
    page.click("nav a[href='/users']")
    page.fill("#new-user input[name=name]", "bob")
    page.select_option("#new-user select[name=role]", "analyst")
    page.fill("#new-user input[name=password]", PASSWORD)
    page.fill("#new-user input[name=password_again]", PASSWORD)
    page.click("#new-user button[type=submit]")
    page.wait_for_selector("#user-notice")
    assert "bob was added" in page.inner_text("#user-notice")
    row = "tr[data-user=bob]"
    page.select_option(f"{row} form.role select", "viewer")
    page.click(f"{row} form.role button")
    page.wait_for_selector("#user-notice:has-text('bob is now')")
    page.click(f"{row} form.disable button")
    page.wait_for_selector("#user-notice:has-text('bob is disabled')")
    assert "is-disabled" in (page.get_attribute(row, "class") or "")
    # The audit log shows it all, and its chain is intact.
    page.click("nav a[href='/audit']")
    page.wait_for_selector("#chain-ok")
    page.fill("#audit-filters input[name=action]", "user.")
    page.click("#audit-filters button[type=submit]")
    page.wait_for_selector("table.audit")
    actions = page.locator("table.audit tbody tr td:nth-child(4)").all_inner_texts()
    assert actions[:3] == ["user.disable", "user.role", "user.create"]
    assert "(ada)" in page.inner_text("table.audit tbody tr:first-child td:nth-child(3)")
    page.click("text=Sign out")
    page.wait_for_url("**/login")
    # A viewer sees the analyses, not the users or the audit log.
    _sign_in(page, demo_server, "vera")
    page.wait_for_selector("h1:text('Overview')")
    assert page.locator("nav a[href='/users'], nav a[href='/audit']").count() == 0
    page.goto(f"{demo_server.url}/users")
    assert page.inner_text("h1") == "Not allowed"
    assert "it needs the permission" in page.inner_text("#forbidden")
    context.close()
