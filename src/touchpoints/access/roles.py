"""Roles and their permissions, in this one place: what a key or a dashboard user may do.

A route or page names the permission it needs (``require("profiles")``,
``dashboard.page(handler, "profiles")``); a caller's role grants a set of them. Nothing else
decides access. The permissions:

- ``collect``: send events (the collector);
- ``analytics``: aggregate figures: journey analyses, the overview, counts and statistics
  of events, the identity map's summary; nothing that names a person;
- ``profiles``: individual persons: profiles, timelines, merge logs, the people search, a
  person's stages, event lists, drop-off lists, links and matched pairs;
- ``admin``: change the system: keys, users, unmerges and links, matching and its reviews,
  rebuilds, the quarantine (which keeps raw events);
- ``privacy``: the data subject's rights: export, erasure, consent;
- ``audit``: read and verify the audit log;
- ``assist``: answer customers in the agent console: the queues, a conversation with the
  customer's handover summary, replying, closing.

API keys have the roles ``write``, ``read`` and ``admin`` (an admin key may do everything);
dashboard users ``viewer``, ``analyst``, ``privacy_officer``, ``agent`` and ``admin``. Only a
privacy officer and an admin may export or erase (``privacy``); only an agent and an admin
answer customers (``assist``).
"""

from __future__ import annotations

from typing import Literal, get_args

Permission = Literal["collect", "analytics", "profiles", "admin", "privacy", "audit", "assist"]
ALL: frozenset[str] = frozenset(get_args(Permission))

KeyRole = Literal["write", "read", "admin"]
KEY_ROLES: tuple[KeyRole, ...] = ("write", "read", "admin")
UserRole = Literal["viewer", "analyst", "privacy_officer", "agent", "admin"]
USER_ROLES: tuple[UserRole, ...] = ("viewer", "analyst", "privacy_officer", "agent", "admin")

# What each role of a key may do.
KEY_PERMISSIONS: dict[str, frozenset[str]] = {
    "write": frozenset({"collect"}),
    "read": frozenset({"analytics", "profiles"}),
    "admin": ALL,
}
# What each role of a dashboard user may do.
USER_PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"analytics"}),
    "analyst": frozenset({"analytics", "profiles"}),
    "privacy_officer": frozenset({"profiles", "privacy", "audit"}),
    "agent": frozenset({"assist", "analytics"}),
    "admin": ALL,
}


def checked(permission: str) -> str:
    """``permission`` if it is one of :data:`Permission`; a ValueError naming the known ones
    otherwise (a misspelt permission in a route would refuse everyone, silently)."""
    if permission not in ALL:
        raise ValueError(f"unknown permission {permission!r}; use one of {', '.join(sorted(ALL))}")
    return permission
