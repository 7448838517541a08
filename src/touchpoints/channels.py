"""Channel detection: which of our twelve channels an event happened on.

Order (first answer wins), documented in docs/channels.md:

1. an explicit ``context.channel`` or ``properties.channel`` (spelling variants folded:
   "E-Mail" → email, "app" → mobile_app; an unknown value → other);
2. the user's ``channel_rules`` from the settings;
3. the built-in rules below, unless ``builtin_channel_rules`` is off: device type, then the
   sending library and app, then the campaign (utm medium and source), then the referrer,
   then web signals (a page call, a page context or a browser user agent);
4. otherwise ``other``.

Campaign and referrer are read the way web analytics tools group traffic: a page view that
arrives from a newsletter link is an e-mail touchpoint, from an Instagram post a social one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator, model_validator

CHANNELS: tuple[str, ...] = (
    "web",
    "mobile_app",
    "email",
    "social",
    "sms",
    "chat",
    "phone",
    "store",
    "iot",
    "voice",
    "blockchain",
    "other",
)


class ChannelRule(BaseModel):
    """A user rule for channel detection, checked before the built-in rules.

    ``field`` is a dotted path into the event (``context.library.name``, ``properties.source``,
    ``event``, ``type``); exactly one of ``equals``, ``in``, ``matches`` (regular expression,
    case-insensitive) or ``exists`` says when it applies.
    """

    field: str = Field(min_length=1)
    channel: str
    equals: str | None = None
    in_: list[str] | None = Field(default=None, alias="in")
    matches: str | None = None
    exists: bool | None = None

    model_config = {"populate_by_name": True, "extra": "forbid"}

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"unknown channel {value!r}; use one of {', '.join(CHANNELS)}")
        return value

    @model_validator(mode="after")
    def _one_condition(self) -> ChannelRule:
        given = [
            name
            for name, value in (
                ("equals", self.equals),
                ("in", self.in_),
                ("matches", self.matches),
                ("exists", self.exists),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "a channel rule needs exactly one of equals, in, matches, exists "
                f"(got {', '.join(given) or 'none'})"
            )
        if self.matches is not None:
            try:
                re.compile(self.matches)
            except re.error as exc:
                raise ValueError(f"matches is not a valid regular expression: {exc}") from exc
        return self


_EMPTY: Mapping[str, Any] = {}

_ALIASES: dict[str, str] = {
    "e-mail": "email",
    "mail": "email",
    "newsletter": "email",
    "website": "web",
    "browser": "web",
    "online": "web",
    "app": "mobile_app",
    "mobile": "mobile_app",
    "mobile-app": "mobile_app",
    "mobileapp": "mobile_app",
    "ios": "mobile_app",
    "android": "mobile_app",
    "social_media": "social",
    "social-media": "social",
    "socialmedia": "social",
    "text": "sms",
    "messenger": "chat",
    "chatbot": "chat",
    "livechat": "chat",
    "whatsapp": "chat",
    "call": "phone",
    "telephone": "phone",
    "hotline": "phone",
    "call_center": "phone",
    "callcenter": "phone",
    "shop": "store",
    "dealer": "store",
    "pos": "store",
    "retail": "store",
    "offline": "store",
    "connected_car": "iot",
    "car": "iot",
    "smart_home": "iot",
    "voice_assistant": "voice",
    "smart_speaker": "voice",
    "alexa": "voice",
    "wallet": "blockchain",
    "web3": "blockchain",
    "letter": "other",
    "mail_letter": "other",
}

_MOBILE_LIBRARIES = re.compile(
    r"analytics-(ios|android|react-native|flutter|kotlin|swift|xamarin)"
    r"|rudder-(ios|android|react-native|flutter)|@segment/analytics-react-native"
    r"|posthog-(ios|android|react-native|flutter)",
    re.IGNORECASE,
)
_WEB_LIBRARIES = re.compile(
    r"^(analytics\.js|analytics-next|@segment/analytics-next|rudderanalytics\.js"
    r"|rudder-sdk-js|RudderLabs JavaScript SDK|posthog-js|touchpoints\.js)$",
    re.IGNORECASE,
)

_DEVICE_TYPES: dict[str, str] = {
    "ios": "mobile_app",
    "android": "mobile_app",
    "car": "iot",
    "vehicle": "iot",
    "connected_car": "iot",
    "iot": "iot",
    "smart_home": "iot",
    "thermostat": "iot",
    "wearable": "iot",
    "tv": "iot",
    "smart_tv": "iot",
    "smart_speaker": "voice",
    "voice_assistant": "voice",
    "voice": "voice",
    "pos": "store",
    "kiosk": "store",
    "wallet": "blockchain",
}

_MEDIUMS: dict[str, str] = {
    "email": "email",
    "e-mail": "email",
    "newsletter": "email",
    "mail": "email",
    "sms": "sms",
    "text": "sms",
    "mms": "sms",
    "social": "social",
    "social-media": "social",
    "social_media": "social",
    "paid_social": "social",
    "paid-social": "social",
    "organic_social": "social",
    "sm": "social",
    "chat": "chat",
    "chatbot": "chat",
    "messenger": "chat",
    "push": "mobile_app",
    "app": "mobile_app",
    "qr": "store",
    "print": "other",
    "letter": "other",
}

# Social networks by name (matched against host labels and campaign-source words) and by domain.
_SOCIAL_NAMES = frozenset(
    "facebook instagram tiktok linkedin twitter youtube pinterest reddit snapchat xing "
    "threads mastodon whatsapp telegram".split()
)
_SOCIAL_SOURCE_WORDS = _SOCIAL_NAMES | {"fb", "ig", "li", "yt", "x", "social"}
_SOCIAL_DOMAINS = ("x.com", "t.co", "fb.com", "fb.me", "youtu.be", "lnkd.in", "threads.net")
_MAIL_DOMAINS = (
    "mail.google.com",
    "outlook.live.com",
    "outlook.office.com",
    "outlook.office365.com",
    "mail.yahoo.com",
    "gmx.net",
    "gmx.de",
    "web.de",
    "t-online.de",
    "mail.proton.me",
)
_BROWSER_AGENT = re.compile(r"Mozilla/|Chrome/|Safari/|Firefox/|Edg/", re.IGNORECASE)


def normalize_channel(value: Any) -> str | None:
    """Fold a sender's channel spelling into the taxonomy; None when it is not a string."""
    if not isinstance(value, str) or not value.strip():
        return None
    return _fold_channel(value)


@lru_cache(maxsize=1024)
def _fold_channel(value: str) -> str:
    key = value.strip().lower().replace(" ", "_")
    if key in CHANNELS:
        return key
    return _ALIASES.get(key, "other")


def _get(event: Mapping[str, Any], path: str) -> Any:
    current: Any = event
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def _host(url: Any) -> str:
    if not isinstance(url, str) or not url:
        return ""
    try:
        return (urlsplit(url if "//" in url else "//" + url).hostname or "").lower()
    except ValueError:
        return ""


def _host_in(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == domain or host.endswith("." + domain) for domain in domains)


def _is_social_host(host: str) -> bool:
    return _host_in(host, _SOCIAL_DOMAINS) or not _SOCIAL_NAMES.isdisjoint(host.split("."))


def _as_text(value: Any) -> str:
    """A field's value as rule text: JSON false/true/0 stay themselves, missing is empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _rule_matcher(rule: ChannelRule) -> Callable[[Mapping[str, Any]], bool]:
    if rule.exists is not None:
        want = rule.exists
        return lambda event: (_get(event, rule.field) is not None) == want
    if rule.equals is not None:
        target = rule.equals.lower()
        return lambda event: _as_text(_get(event, rule.field)).lower() == target
    if rule.in_ is not None:
        choices = {choice.lower() for choice in rule.in_}
        return lambda event: _as_text(_get(event, rule.field)).lower() in choices
    pattern = re.compile(rule.matches or "", re.IGNORECASE)
    return lambda event: bool(pattern.search(_as_text(_get(event, rule.field))))


class ChannelDetector:
    """Applies the documented order; built once from the settings, then called per event."""

    def __init__(self, rules: list[ChannelRule] | None = None, builtin: bool = True) -> None:
        self._rules = [(_rule_matcher(rule), rule.channel) for rule in rules or []]
        self._builtin = builtin

    def detect(self, event: Mapping[str, Any]) -> str:
        """The channel of a whole event (as stored: type and context final)."""
        return self.detect_parts(event.get("type"), event.get("context"), event)

    def detect_parts(self, kind: Any, context: Any, event: Mapping[str, Any]) -> str:
        """The channel of ``event`` whose type is ``kind`` and whose context is ``context``
        (the collector passes the route's type and the batch context merged in)."""
        context = context if isinstance(context, dict) else _EMPTY
        properties = event.get("properties")
        properties = properties if isinstance(properties, dict) else _EMPTY

        explicit = normalize_channel(context.get("channel")) or normalize_channel(
            properties.get("channel")
        )
        if explicit:
            return explicit
        if self._rules:
            view = {**event, "type": kind, "context": context}
            for matches, channel in self._rules:
                if matches(view):
                    return channel
        if self._builtin:
            return _builtin_channel(kind, context) or "other"
        return "other"


# Events come from JSON, so objects are dicts: isinstance(x, dict) is several times cheaper
# than an isinstance check against the Mapping ABC, and this runs for every event.
def _mapping(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, dict) else _EMPTY


# The rules below look at a handful of short strings that repeat across millions of events
# (library names, utm values, referrers), so each answer is cached: detection stays at a few
# microseconds an event on the ingest hot path.
@lru_cache(maxsize=4096)
def _library_kind(name: str) -> str | None:
    if _MOBILE_LIBRARIES.search(name):
        return "mobile_app"
    if _WEB_LIBRARIES.search(name):
        return "web"
    return None


@lru_cache(maxsize=4096)
def _campaign_channel(medium: str | None, source: str | None) -> str | None:
    if medium is not None:
        channel = _MEDIUMS.get(medium.strip().lower())
        if channel:
            return channel
    if source is not None:
        lowered = source.lower()
        words = set(re.split(r"[^a-z0-9]+", lowered))
        if not _SOCIAL_SOURCE_WORDS.isdisjoint(words) or _is_social_host(lowered):
            return "social"
    return None


@lru_cache(maxsize=65536)
def _referrer_channel(url: str) -> str | None:
    host = _host(url)
    if not host:
        return None
    if _is_social_host(host):
        return "social"
    if _host_in(host, _MAIL_DOMAINS):
        return "email"
    return None


@lru_cache(maxsize=4096)
def _is_browser(user_agent: str) -> bool:
    return bool(_BROWSER_AGENT.search(user_agent))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _builtin_channel(kind: Any, context: Mapping[str, Any]) -> str | None:
    device_type = _text(_mapping(context, "device").get("type"))
    if device_type is not None:
        channel = _DEVICE_TYPES.get(device_type.lower())
        if channel:
            return channel

    library_name = _text(_mapping(context, "library").get("name"))
    library = _library_kind(library_name) if library_name else None
    if library == "mobile_app":
        return "mobile_app"
    # Browser SDKs such as RudderStack's send a context.app object too (the site's name):
    # a known web library outweighs it.
    if kind == "screen" or (library != "web" and isinstance(context.get("app"), dict)):
        return "mobile_app"

    campaign = _mapping(context, "campaign")
    medium, source = _text(campaign.get("medium")), _text(campaign.get("source"))
    if medium is not None or source is not None:
        channel = _campaign_channel(medium, source)
        if channel:
            return channel

    page = _mapping(context, "page")
    referrer = _text(page.get("referrer")) or _text(_mapping(context, "referrer").get("url"))
    if referrer is not None:
        channel = _referrer_channel(referrer)
        if channel:
            return channel

    if library == "web" or kind == "page" or page:
        return "web"
    user_agent = _text(context.get("userAgent"))
    if user_agent is not None and _is_browser(user_agent):
        return "web"
    return None
