"""API keys: roles, hashing at rest, revocation, and reading the key out of a header."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from touchpoints.access.keys import KeyNotFound, KeyRefused, KeyStore, secret_from_header
from touchpoints.config import Settings
from touchpoints.core import Touchpoints


def _basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("role", ["write", "read", "admin"])
def test_create_returns_a_role_prefixed_secret_that_verifies(tp: Touchpoints, role: str) -> None:
    key, secret = tp.keys.create(role, name=f"{role} key")

    assert re.fullmatch(rf"tp_{role}_[0-9a-f]{{32}}", secret), secret
    assert re.fullmatch(r"key_[0-9a-f]{12}", key.id), key.id
    assert key.role == role
    assert key.name == f"{role} key"
    # The prefix shown in listings: the role marker and the first four hex digits.
    assert key.prefix == secret[: len(f"tp_{role}_") + 4]
    assert key.revoked_at is None
    assert tp.keys.verify(secret) == key


def test_list_holds_every_key_and_survives_a_reopen(settings: Settings) -> None:
    with Touchpoints(settings) as tp:
        made = [tp.keys.create(role)[0] for role in ("write", "read", "admin")]
        listed = tp.keys.list()
    expected = sorted(made, key=lambda k: (k.created_at, k.id))
    assert listed == expected
    assert [k.role for k in listed] == ["write", "read", "admin"]

    with Touchpoints(settings) as reopened:
        assert reopened.keys.list() == expected


def test_unknown_role_is_refused(tp: Touchpoints) -> None:
    with pytest.raises(KeyRefused, match=r"^unknown role 'owner'; use one of write, read, admin$"):
        tp.keys.create("owner")
    assert tp.keys.list() == []


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("write", {"collect"}),
        ("read", {"analytics", "profiles"}),
        ("admin", {"collect", "analytics", "profiles", "admin", "privacy", "audit"}),
    ],
)
def test_each_role_has_exactly_its_permissions(
    tp: Touchpoints, role: str, allowed: set[str]
) -> None:
    key, secret = tp.keys.create(role)
    verified = tp.keys.verify(secret)
    assert verified is not None
    every = ("collect", "analytics", "profiles", "admin", "privacy", "audit")
    assert {permission for permission in every if verified.allows(permission)} == allowed


def test_only_the_hash_is_stored_never_the_secret(settings: Settings) -> None:
    with Touchpoints(settings) as tp:
        made = [tp.keys.create(role, name=f"{role} key") for role in ("write", "read", "admin")]
        stored = dict(tp.warehouse.fetchall("SELECT id, key_hash FROM api_keys"))
        tp.warehouse.run("CHECKPOINT")
    assert stored == {key.id: hashlib.sha256(secret.encode()).hexdigest() for key, secret in made}

    files = [p for p in settings.data_dir.iterdir() if p.name.startswith("touchpoints.duckdb")]
    data = b"".join(p.read_bytes() for p in files)
    for key, secret in made:
        assert secret.encode() not in data
        # The same bytes do hold the key's other columns, so the search above can find text.
        assert key.id.encode() in data
        assert hashlib.sha256(secret.encode()).hexdigest().encode() in data


def test_a_revoked_key_is_refused_now_and_after_a_reopen(settings: Settings) -> None:
    with Touchpoints(settings) as tp:
        write, write_secret = tp.keys.create("write")
        read, read_secret = tp.keys.create("read")

        revoked = tp.keys.revoke(write.id)
        assert revoked.id == write.id
        assert revoked.revoked_at is not None
        assert revoked.revoked_at >= write.created_at
        assert not revoked.allows("collect")
        assert tp.keys.verify(write_secret) is None
        assert tp.keys.verify(read_secret) == read
        listed = {k.id: k.revoked_at for k in tp.keys.list()}
        assert listed == {write.id: revoked.revoked_at, read.id: None}

        # Revoking again changes nothing: the first revocation time stays.
        assert tp.keys.revoke(write.id).revoked_at == revoked.revoked_at

    with Touchpoints(settings) as reopened:
        assert reopened.keys.verify(write_secret) is None
        assert reopened.keys.verify(read_secret) == read


def test_revoking_an_unknown_id_is_refused(tp: Touchpoints) -> None:
    with pytest.raises(KeyNotFound, match=r"^no key with id 'key_000000000000'$"):
        tp.keys.revoke("key_000000000000")


def test_a_write_key_cannot_read(tp: Touchpoints) -> None:
    _, secret = tp.keys.create("write")
    key = tp.keys.verify(secret)
    assert key is not None
    assert key.allows("collect") is True
    assert key.allows("analytics") is False
    assert key.allows("profiles") is False
    assert key.allows("admin") is False


def test_unknown_secrets_do_not_verify(tp: Touchpoints) -> None:
    _, secret = tp.keys.create("admin")
    assert tp.keys.verify(secret[:-1] + ("0" if secret[-1] != "0" else "1")) is None
    assert tp.keys.verify("") is None
    assert tp.keys.verify("tp_admin_") is None


def test_ephemeral_keys_verify_but_are_not_listed_or_stored(tp: Touchpoints) -> None:
    secret = tp.keys.add_ephemeral("admin", "control")
    key = tp.keys.verify(secret)
    assert key is not None
    assert (key.id, key.role) == ("control", "admin")
    assert tp.keys.list() == []
    assert tp.warehouse.scalar("SELECT count(*) FROM api_keys") == 0
    assert KeyStore(tp.warehouse).verify(secret) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (_basic("tp_write_abc"), "tp_write_abc"),
        # Some clients send the key without the colon; the user part is still the key.
        ("Basic " + base64.b64encode(b"tp_write_abc").decode(), "tp_write_abc"),
        # A password, if any, is ignored: the key is the user name.
        (_basic("tp_write_abc", "ignored"), "tp_write_abc"),
        ("basic " + base64.b64encode(b"tp_write_abc:").decode(), "tp_write_abc"),
        ("Bearer tp_read_xyz", "tp_read_xyz"),
        ("bearer   tp_read_xyz  ", "tp_read_xyz"),
        ("BEARER tp_read_xyz", "tp_read_xyz"),
        ("Bearer ", None),
        (_basic(""), None),
        (_basic("", "secret"), None),
        ("Basic not-base64!!", None),
        ("Basic " + base64.b64encode(b"\xff\xfe:").decode(), None),
        ("Token tp_read_xyz", None),
        ("tp_read_xyz", None),
        ("", None),
        (None, None),
    ],
)
def test_secret_from_header(header: str | None, expected: str | None) -> None:
    assert secret_from_header(header) == expected


def test_a_basic_header_made_from_a_created_key_verifies(tp: Touchpoints) -> None:
    key, secret = tp.keys.create("write")
    assert tp.keys.verify(secret_from_header(_basic(secret)) or "") == key
    assert tp.keys.verify(secret_from_header(f"Bearer {secret}") or "") == key


def test_header_secret_remembers_only_headers_of_real_keys_and_never_outlives_a_revocation(
    tp: Touchpoints,
) -> None:
    key, secret = tp.keys.create("write", "site")
    header = "Basic " + base64.b64encode(f"{secret}:".encode()).decode()
    assert tp.keys.header_secret(header) == secret
    assert tp.keys._headers == {header: secret}
    # A made-up key is parsed, answered, and not kept: such headers cannot grow the cache.
    made_up = "Bearer tp_write_" + "0" * 32
    assert tp.keys.header_secret(made_up) == "tp_write_" + "0" * 32
    assert tp.keys.header_secret("Digest abc") is None
    assert list(tp.keys._headers) == [header]
    tp.keys.revoke(key.id)
    remembered = tp.keys.header_secret(header)
    assert remembered == secret
    assert tp.keys.verify(remembered) is None  # the cache holds the parse, not the verdict
