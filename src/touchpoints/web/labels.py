"""Display labels for the few names touchpoints itself gives to data: its twelve channels, the
default stage model's six stages, the age group of people without an age, the roles of keys
and of users, the permissions, the attribution models, the kinds of merges, and the
placeholders of the analyses ("(other)", "(none)").

Only the label changes with the language; the name stays what it is everywhere else (in
links, form values, CSV downloads, the API). English shows the names as events and the API
write them (``mobile_app``), so an English page can be searched for what the API answers;
German shows "Mobile App". Everything else a page shows of the data (event names, stage
names of a stage model of your own, trait values, campaigns) is shown as it is.
"""

from __future__ import annotations

from typing import Any

from touchpoints.web.i18n import NP_, Language

CHANNELS = {
    # Translators: the channels of docs/channels.md; keep them short (chart labels).
    "web": NP_("channel", "web"),
    "mobile_app": NP_("channel", "mobile_app"),
    "email": NP_("channel", "email"),
    "social": NP_("channel", "social"),
    "sms": NP_("channel", "sms"),
    "chat": NP_("channel", "chat"),
    "phone": NP_("channel", "phone"),
    "store": NP_("channel", "store"),
    "iot": NP_("channel", "iot"),
    "voice": NP_("channel", "voice"),
    "blockchain": NP_("channel", "blockchain"),
    "other": NP_("channel", "other"),
}
STAGES = {
    # Translators: the stages of the default stage model (the customer journey's phases).
    "awareness": NP_("stage", "awareness"),
    "consideration": NP_("stage", "consideration"),
    "decision": NP_("stage", "decision"),
    "purchase": NP_("stage", "purchase"),
    "retention": NP_("stage", "retention"),
    "advocacy": NP_("stage", "advocacy"),
}
AGE_GROUPS = {"unknown": NP_("age group", "unknown")}
ROLES = {
    "write": NP_("key role", "write"),
    "read": NP_("key role", "read"),
    "admin": NP_("key role", "admin"),
}
USER_ROLES = {
    # Translators: the roles of dashboard users.
    "viewer": NP_("user role", "viewer"),
    "analyst": NP_("user role", "analyst"),
    "privacy_officer": NP_("user role", "privacy_officer"),
    "agent": NP_("user role", "agent"),
    "admin": NP_("user role", "admin"),
}
PERMISSIONS = {
    # Translators: what a role allows (docs/access.md): a short name each.
    "collect": NP_("permission", "collect"),
    "analytics": NP_("permission", "analytics"),
    "profiles": NP_("permission", "profiles"),
    "admin": NP_("permission", "admin"),
    "privacy": NP_("permission", "privacy"),
    "audit": NP_("permission", "audit"),
    "assist": NP_("permission", "assist"),
}
MERGE_KINDS = {
    # Translators: the kinds of entries of a person's merge log.
    "merge": NP_("merge kind", "merge"),
    "link": NP_("merge kind", "link"),
    "unmerge": NP_("merge kind", "unmerge"),
}
MODELS = {
    # Translators: the attribution models as the headings of the table of every model.
    "first_touch": NP_("attribution model", "first_touch"),
    "last_touch": NP_("attribution model", "last_touch"),
    "linear": NP_("attribution model", "linear"),
    "time_decay": NP_("attribution model", "time_decay"),
    "position_based": NP_("attribution model", "position_based"),
    "markov": NP_("attribution model", "markov"),
}
PLACEHOLDERS = {
    # Translators: a step that stands for the rare steps grouped together (paths).
    "(other)": NP_("placeholder", "(other)"),
    # Translators: a path with no step after (or before) its event.
    "(no step)": NP_("placeholder", "(no step)"),
    # Translators: the group of the people without a value (a funnel's breakdown).
    "(none)": NP_("placeholder", "(none)"),
}

_KINDS = {
    "channel": CHANNELS,
    "stage": STAGES,
    "age group": AGE_GROUPS,
    "key role": ROLES,
    "user role": USER_ROLES,
    "permission": PERMISSIONS,
    "attribution model": MODELS,
    "merge kind": MERGE_KINDS,
    "placeholder": PLACEHOLDERS,
}


def label(language: Language, kind: str, name: Any) -> str:
    """The label of ``name`` as a ``kind`` ("channel", "stage", "age group", "key role",
    "user role", "permission", "attribution model", "merge kind", "placeholder") in
    ``language``; a name touchpoints did not give, as it is."""
    text = "" if name is None else str(name)
    known = _KINDS[kind]
    return language.translate(known[text], kind) if text in known else text


def channel(language: Language, name: Any) -> str:
    return label(language, "channel", name)


def stage(language: Language, name: Any) -> str:
    return label(language, "stage", name)


def role(language: Language, actor: Any) -> str:
    """The role of a session's actor (a key's or a user's) in ``language``."""
    kind = "user role" if getattr(actor, "kind", "key") == "user" else "key role"
    return label(language, kind, actor.role)


def placeholder(language: Language, name: Any) -> str:
    """ "(other)", "(no step)", "(none)" in ``language``; any other name as it is."""
    return label(language, "placeholder", name)
