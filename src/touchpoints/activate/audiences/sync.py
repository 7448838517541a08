"""Audience membership as destinations receive it, the way Segment sends it.

- ``identify``: an identify call with the audience's key as a trait, ``true`` when the
  person entered and ``false`` when they exited (``{"traits": {"high_intent": true}}``);
- ``track``: a track call ``Audience Entered`` or ``Audience Exited``, with the audience's
  key in ``properties.audience_key`` and as ``<key>: true|false``.

Both name the person by their user id and an anonymous (or device) id when they have them,
carry their e-mail address as a trait when known, and say where they come from in
``context.personas`` (as Segment's audiences do, so receivers that read it work unchanged).
A person with neither id is named ``anonymousId: "person:N"``, touchpoints' own number.
The ``messageId`` is the outbox message id: a receiver deduplicates by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from touchpoints.times import iso

Mode = Literal["identify", "track"]
MODES: tuple[str, ...] = ("identify", "track")
# Destinations that take a Segment call as a message.
SYNCED_KINDS = ("webhook", "segment")


def payload(
    mode: str,
    audience: tuple[int, str, str],
    person: int,
    member: bool,
    ids: Mapping[str, str],
    message_id: str,
    now: datetime,
) -> dict[str, Any]:
    """The call that tells a destination ``person`` entered (``member``) or exited the
    audience ``(id, key, name)``."""
    audience_id, key, name = audience
    call: dict[str, Any] = {
        "messageId": message_id,
        "timestamp": iso(now),
        "context": {
            "library": {"name": "touchpoints"},
            "personas": {
                "computation_class": "audience",
                "computation_id": str(audience_id),
                "computation_key": key,
                "computation_name": name,
            },
        },
    }
    if "user_id" in ids:
        call["userId"] = ids["user_id"]
    anonymous = ids.get("anonymous_id") or ids.get("device_id")
    if anonymous is not None:
        call["anonymousId"] = anonymous
    if "userId" not in call and "anonymousId" not in call:
        call["anonymousId"] = f"person:{person}"
    if mode == "identify":
        traits: dict[str, Any] = {key: member}
        if "email" in ids:
            traits["email"] = ids["email"]
        return {"type": "identify", **call, "traits": traits}
    properties: dict[str, Any] = {"audience_key": key, key: member}
    if "email" in ids:
        call["context"]["traits"] = {"email": ids["email"]}
    event = "Audience Entered" if member else "Audience Exited"
    return {"type": "track", "event": event, **call, "properties": properties}
