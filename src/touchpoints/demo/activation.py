"""What ``touchpoints demo`` sets up to act on its data: two audiences and the placement of
docs/personalisation.md, so the Audiences and Personalisation pages, the demo shop and
``touchpoints decide`` have something to show from the first run.

They are made through the API (``POST /v1/audiences``, ``POST /v1/placements``) by the
demo's loader, with an admin key the demo hands it, after the events are sent (so the
audiences' first evaluation sees nearly everyone at once, instead of every event being
evaluated live while the demo loads; what is still being written is evaluated live). A demo
run again on the same data directory keeps what is there (a user may have changed it).
"""

from __future__ import annotations

from typing import Any

import httpx

# The audience docs/personalisation.md's placement names. The docs' example asks for two
# saves; few of the demo's people save a configuration twice (none of 300), so here one
# save is enough.
CONFIGURATORS: dict[str, Any] = {
    "key": "configurators",
    "name": "Configured a car",
    "description": "Saved a configuration: ready for a test drive",
    "condition": {"event": "Configuration Saved"},
}
# The README's high_intent for the demo's people: one save within 90 days is intent here.
RECENT_CONFIGURATORS: dict[str, Any] = {
    "key": "recent_configurators",
    "name": "Configured in the last 90 days, no order, reachable",
    "condition": {
        "and": [
            {"event": "Configuration Saved", "within_days": 90},
            {"not": {"event": "Order Completed"}},
            {"consent": "marketing"},
        ]
    },
}
# docs/personalisation.md's placement (tests/unit/test_demo_activation.py holds them equal).
HOME_HERO: dict[str, Any] = {
    "key": "home_hero",
    "name": "Home page hero",
    "strategy": "first_match",
    "control_percent": 10,
    "conversion_event": "Order Completed",
    "conversion_days": 30,
    "default": {"headline": "Welcome to Nordwind"},
    "rules": [
        {
            "key": "test_drive",
            "condition": {"audience": "configurators"},
            "content": {"headline": "Book your test drive", "text": "Your E5 is waiting."},
        },
        {
            "key": "win_back",
            "condition": {
                "and": [
                    {"prediction": "churn_risk", "gte": 0.6},
                    {"journey_stage": "retention"},
                ]
            },
            "content": {"headline": "We have missed you", "offer": "SPRING10"},
        },
    ],
}


def set_up(client: httpx.Client) -> list[str]:
    """Make the demo's audiences and placement where they are missing, through the API
    (``client`` holds the server's address and an admin key). Returns the keys made (the
    others were there: a demo run again keeps what a user may have changed)."""
    made: list[str] = []
    for path, definition in (
        ("/v1/audiences", CONFIGURATORS),
        ("/v1/audiences", RECENT_CONFIGURATORS),
        ("/v1/placements", HOME_HERO),
    ):
        answer = client.post(path, json=definition)
        if answer.status_code == 409:
            continue
        if answer.status_code >= 400:
            raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text[:300]}")
        made.append(definition["key"])
    return made
