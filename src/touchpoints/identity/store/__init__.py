"""The identity part's storage: every SQL statement and Arrow write of identity resolution.

- :mod:`.identity_map`: identifiers, event identifiers, links, the merge log, refused links;
- :mod:`.matching`: the person records matching compares, the matched pairs and the review
  list, and our own steps on the database Splink works in;
- :mod:`.rebuild`: the set-based steps of ``touchpoints identity rebuild``.
"""

from touchpoints.identity.store.identity_map import (
    EventIdentifier,
    Evidence,
    IdentityChanges,
    IdentityStore,
    NewEvent,
    NewIdentifier,
    NewLink,
    ReplayRow,
    StoredIdentifiers,
    StoredLink,
    component_rows,
    component_rows_sql,
    insert_rejections,
    link_sids_sql,
)

__all__ = [
    "EventIdentifier",
    "Evidence",
    "IdentityChanges",
    "IdentityStore",
    "NewEvent",
    "NewIdentifier",
    "NewLink",
    "ReplayRow",
    "StoredIdentifiers",
    "StoredLink",
    "component_rows",
    "component_rows_sql",
    "insert_rejections",
    "link_sids_sql",
]
