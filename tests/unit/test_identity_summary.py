"""The identity map's summary: persons, identified against anonymous, identifiers per type."""

from __future__ import annotations

from pathlib import Path

from test_identity_rebuild import send

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints


def test_a_person_known_only_by_cookies_and_devices_is_anonymous(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        send(
            tp,
            [
                # Anna signs in on her laptop: identified, with her cookie.
                {"type": "identify", "anonymousId": "a-laptop", "userId": "anna",
                 "messageId": "1"},
                # Ben leaves his e-mail on a form: identified without a user id.
                {"type": "identify", "anonymousId": "b-phone",
                 "traits": {"email": "ben@example.com"}, "messageId": "2"},
                # A visitor and an app install: anonymous.
                {"type": "page", "anonymousId": "c-tablet", "messageId": "3"},
                {"type": "track", "event": "App Opened", "anonymousId": "d-app",
                 "context": {"device": {"id": "dev-1"}}, "messageId": "4"},
            ],
        )  # fmt: skip
        summary = tp.identity.summary()
    assert summary.model_dump() == {
        "persons": 4,
        "identified": 2,
        "anonymous": 2,
        "identifiers": {"anonymous_id": 4, "device_id": 1, "email": 1, "user_id": 1},
    }
