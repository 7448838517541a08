"""Dashboard users: only an argon2id hash of each password is stored; names are unique in any
letter case; the last enabled admin stays; a sign-in tells its reason only to the audit log;
a hash made with older parameters is made again at the next sign-in."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher

from touchpoints.access.users import LastAdmin, Passwords, UserRefused, Users
from touchpoints.config import Settings, load_settings
from touchpoints.core import Touchpoints

PASSWORD = "correct horse battery"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def users(tp: Touchpoints) -> Users:
    tp.users.passwords = Passwords(CHEAP)
    return tp.users


def test_the_default_hash_is_argon2id_at_rfc_9106s_low_memory_profile() -> None:
    digest = Passwords().hash(PASSWORD)
    assert digest.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert Passwords().verify(digest, PASSWORD)
    assert not Passwords().verify(digest, PASSWORD + "!")


def test_only_the_hash_is_stored_and_survives_a_reopen(settings: Settings) -> None:
    with Touchpoints(settings) as tp:
        tp.users.passwords = Passwords(CHEAP)
        made = tp.users.create("Anna", "analyst", PASSWORD)
        stored = str(tp.warehouse.fetchall("SELECT * FROM users"))
    assert PASSWORD not in stored and "$argon2id$" in stored
    with Touchpoints(settings) as tp:
        tp.users.passwords = Passwords(CHEAP)
        assert tp.users.get("ANNA").id == made.id
        assert tp.users.authenticate("anna", PASSWORD).ok


def test_names_are_unique_in_any_letter_case_and_checked(users: Users) -> None:
    users.create("anna", "viewer", PASSWORD)
    with pytest.raises(UserRefused, match="exists already"):
        users.create("Anna", "viewer", PASSWORD)
    with pytest.raises(UserRefused, match="letters, digits"):
        users.create("anna berg", "viewer", PASSWORD)
    with pytest.raises(UserRefused, match="not a role"):
        users.create("bert", "boss", PASSWORD)
    with pytest.raises(UserRefused, match="at least 12"):
        users.create("bert", "viewer", "short")
    with pytest.raises(UserRefused, match="must not contain the user's name"):
        users.create("bert", "viewer", "bert-is-the-best-1")


def test_the_last_enabled_admin_cannot_be_disabled_or_demoted(users: Users) -> None:
    users.create("anna", "admin", PASSWORD)
    with pytest.raises(LastAdmin):
        users.disable("anna")
    with pytest.raises(LastAdmin):
        users.set_role("anna", "viewer")
    users.create("bert", "admin", PASSWORD)
    assert users.set_role("anna", "viewer").role == "viewer"
    with pytest.raises(LastAdmin):
        users.disable("bert")


def test_sign_ins_say_why_they_failed_to_the_log_only(users: Users) -> None:
    users.create("anna", "analyst", PASSWORD)
    assert users.authenticate("nobody", PASSWORD).reason == "unknown name"
    wrong = users.authenticate("anna", "not the password")
    assert (wrong.ok, wrong.reason, wrong.user and wrong.user.name) == (
        False,
        "wrong password",
        "anna",
    )
    users.disable("anna")
    disabled = users.authenticate("anna", PASSWORD)
    assert (disabled.ok, disabled.reason) == (False, "disabled")
    users.enable("anna")
    signed_in = users.authenticate(" ANNA ", PASSWORD)
    assert signed_in.ok and signed_in.user and signed_in.user.last_signin_at is not None


def test_a_new_password_replaces_the_old_one(users: Users) -> None:
    users.create("anna", "analyst", PASSWORD)
    users.set_password("anna", "another long password")
    assert not users.authenticate("anna", PASSWORD).ok
    assert users.authenticate("anna", "another long password").ok


def test_a_hash_with_older_parameters_is_made_again_at_sign_in(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        tp.users.passwords = Passwords(CHEAP)
        tp.users.create("anna", "analyst", PASSWORD)
        stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
        tp.users.passwords = Passwords(stronger)
        assert tp.users.authenticate("anna", PASSWORD).ok
        (digest,) = tp.warehouse.fetchall("SELECT password_hash FROM users")[0]
    assert digest.startswith("$argon2id$v=19$m=2048,t=2,p=1$")
