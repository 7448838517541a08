"""Identifiers: where they are found, their normal form, and the junk that is refused."""

from __future__ import annotations

import pytest

from touchpoints.identity import (
    BlockList,
    Identifier,
    IdentifierExtractor,
    IdentifierType,
    normalise,
)


@pytest.fixture
def extractor() -> IdentifierExtractor:
    return IdentifierExtractor()


def test_identify_call_yields_every_identifier_in_priority_order(
    extractor: IdentifierExtractor,
) -> None:
    message = {
        "type": "identify",
        "userId": "u-1001",
        "anonymousId": "a-77",
        "traits": {
            "email": "  Anna.Berg@Example.COM ",
            "phone": "0171 2345678",
            "customer_number": "K-1000234",
        },
        "context": {"device": {"id": "DEV-9", "advertisingId": "AD-1"}},
    }
    assert extractor.extract(message) == [
        Identifier("user_id", "u-1001"),
        Identifier("customer_number", "K-1000234"),
        Identifier("email", "anna.berg@example.com"),
        Identifier("phone", "+491712345678"),
        Identifier("device_id", "DEV-9"),
        Identifier("advertising_id", "AD-1"),
        Identifier("anonymous_id", "a-77"),
    ]


def test_track_call_reads_context_traits_and_properties(extractor: IdentifierExtractor) -> None:
    message = {
        "type": "track",
        "event": "Wallet Connected",
        "anonymousId": "a-1",
        "properties": {"wallet": "0xAbCdEf0123", "vin": "WNW123"},
        "context": {"traits": {"social_handle": "@Anna_B", "email": "anna@example.com"}},
    }
    assert extractor.extract(message) == [
        Identifier("email", "anna@example.com"),
        Identifier("wallet", "0xabcdef0123"),
        Identifier("vehicle_id", "WNW123"),
        Identifier("social_handle", "@anna_b"),
        Identifier("anonymous_id", "a-1"),
    ]


def test_alias_links_previous_id_as_an_anonymous_id(extractor: IdentifierExtractor) -> None:
    message = {"type": "alias", "userId": "u-1", "previousId": "a-old"}
    assert extractor.extract(message) == [
        Identifier("user_id", "u-1"),
        Identifier("anonymous_id", "a-old"),
    ]


def test_the_same_value_in_two_places_is_one_identifier(extractor: IdentifierExtractor) -> None:
    message = {
        "userId": "u-1",
        "traits": {"email": "a@example.com"},
        "context": {"traits": {"email": "A@EXAMPLE.com"}},
    }
    assert extractor.extract(message) == [
        Identifier("user_id", "u-1"),
        Identifier("email", "a@example.com"),
    ]


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+49 171 2345678", "+491712345678"),
        ("0171 2345678", "+491712345678"),
        ("0049 171/2345678", "+491712345678"),
        ("(040) 123456", "+4940123456"),
        ("+1 650-253-0000", "+16502530000"),
        ("12", None),
        ("call me", None),
        ("", None),
    ],
)
def test_phone_numbers_become_e164(raw: str, e164: str | None) -> None:
    assert normalise("phone", raw) == e164


def test_phone_region_decides_national_numbers() -> None:
    assert normalise("phone", "020 7946 0958", region="GB") == "+442079460958"
    assert normalise("phone", "020 7946 0958", region="DE") != "+442079460958"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Anna@Example.com ", "anna@example.com"),
        ("anna@example", None),
        ("anna example.com", None),
        ("@example.com", None),
        (42, None),
    ],
)
def test_emails_are_trimmed_lower_cased_and_must_look_like_one(
    raw: object, expected: str | None
) -> None:
    assert normalise("email", raw) == expected


def test_numbers_are_ids_but_booleans_and_objects_are_not() -> None:
    assert normalise("exact", 1001) == "1001"
    assert normalise("exact", True) is None
    assert normalise("exact", {"id": 1}) is None
    assert normalise("exact", "  ") is None


@pytest.mark.parametrize(
    "junk",
    [
        "null",
        "NULL",
        "undefined",
        "-1",
        "0",
        "000000",
        "0000-0000-0000",
        "00000000-0000-0000-0000-000000000000",
        "anonymous",
        "Guest",
        "[object Object]",
        "None",
        "NaN",
        "9774d56d682e549c",
    ],
)
def test_placeholder_ids_are_refused(extractor: IdentifierExtractor, junk: str) -> None:
    message = {"userId": junk, "anonymousId": junk, "context": {"device": {"id": junk}}}
    assert extractor.extract(message) == []


@pytest.mark.parametrize(
    "address", ["test@test.com", "TEST@example.com", "noreply@example.org", "foo@bar.com"]
)
def test_test_addresses_are_refused(extractor: IdentifierExtractor, address: str) -> None:
    assert extractor.extract({"userId": "u", "traits": {"email": address}}) == [
        Identifier("user_id", "u")
    ]


def test_real_addresses_that_resemble_test_ones_are_kept(extractor: IdentifierExtractor) -> None:
    for address in ("tester.berg@example.de", "test@nordwind-motors.de", "anna@test-drive.com"):
        found = extractor.extract({"traits": {"email": address}})
        assert found == [Identifier("email", address)], address


def test_the_block_list_can_be_extended() -> None:
    extractor = IdentifierExtractor(
        block_list=BlockList().extended(values=["SHARED-TABLET-1"], patterns=[r"^kiosk-"])
    )
    message = {
        "anonymousId": "kiosk-17",
        "context": {"device": {"id": "shared-tablet-1"}},
        "userId": "u-1",
    }
    assert extractor.extract(message) == [Identifier("user_id", "u-1")]


def test_custom_identifier_types_are_found() -> None:
    loyalty = IdentifierType("loyalty_card", ("properties.card",), "lower", limit=1, priority=0)
    extractor = IdentifierExtractor(types=(loyalty,))
    assert extractor.extract({"properties": {"card": "LC-9"}, "userId": "ignored"}) == [
        Identifier("loyalty_card", "lc-9")
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Bad Name", "paths": ("userId",)}, "lower-case"),
        ({"name": "ok", "paths": ()}, "at least one path"),
        ({"name": "ok", "paths": ("userId",), "limit": 0}, "limit must be at least 1"),
    ],
)
def test_identifier_types_are_validated(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IdentifierType(**kwargs)


def test_a_type_named_twice_is_refused() -> None:
    twice = (IdentifierType("a", ("userId",)), IdentifierType("a", ("anonymousId",)))
    with pytest.raises(ValueError, match="named twice: a"):
        IdentifierExtractor(types=twice)
