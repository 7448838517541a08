"""Channel detection (src/touchpoints/channels.py) against the order documented in docs/channels.md.

1. explicit context.channel / properties.channel, 2. the user's rules, 3. the built-in rules
(device type, library and app, campaign, referrer, web signals), 4. ``other``.
"""

from __future__ import annotations

from typing import Any

import pytest

from touchpoints.channels import CHANNELS, ChannelDetector, ChannelRule, normalize_channel

BROWSER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


def event(
    kind: str = "track", properties: dict[str, Any] | None = None, **context: Any
) -> dict[str, Any]:
    """A minimal event of type ``kind`` whose context holds the keyword arguments."""
    out: dict[str, Any] = {"type": kind, "userId": "u1", "context": context}
    if kind == "track":
        out["event"] = "Something Happened"
    if properties is not None:
        out["properties"] = properties
    return out


@pytest.fixture
def detector() -> ChannelDetector:
    return ChannelDetector()


# -- 1. explicit channel -------------------------------------------------------------------------


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_canonical_channel_name_is_kept(detector: ChannelDetector, channel: str) -> None:
    assert normalize_channel(channel) == channel
    assert detector.detect(event(channel=channel)) == channel


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        # the spellings docs/channels.md lists
        ("E-Mail", "email"),
        ("mail", "email"),
        ("newsletter", "email"),
        ("app", "mobile_app"),
        ("mobile", "mobile_app"),
        ("ios", "mobile_app"),
        ("android", "mobile_app"),
        ("whatsapp", "chat"),
        ("chatbot", "chat"),
        ("hotline", "phone"),
        ("call", "phone"),
        ("dealer", "store"),
        ("pos", "store"),
        ("car", "iot"),
        ("smart_home", "iot"),
        ("alexa", "voice"),
        ("smart_speaker", "voice"),
        ("wallet", "blockchain"),
        ("web3", "blockchain"),
        ("letter", "other"),
        # case, surrounding blanks and spaces are folded too
        ("SMS", "sms"),
        ("  Mobile App  ", "mobile_app"),
        ("Social Media", "social"),
        ("Call Center", "phone"),
        ("Smart Home", "iot"),
        ("WEB", "web"),
    ],
)
def test_spelling_variants_are_folded(spelling: str, expected: str) -> None:
    assert normalize_channel(spelling) == expected


@pytest.mark.parametrize("value", ["carrier pigeon", "fax", "unknown", "e mail x"])
def test_an_unknown_explicit_value_becomes_other(value: str) -> None:
    assert normalize_channel(value) == "other"


def test_an_unknown_explicit_value_is_other_even_with_strong_hints(
    detector: ChannelDetector,
) -> None:
    # "A value that is none of these becomes other": no fall-through to the built-in rules.
    hinted = event(channel="carrier pigeon", library={"name": "analytics-ios"})
    assert detector.detect(hinted) == "other"


@pytest.mark.parametrize("value", [None, "", "   ", 5, True, ["email"], {"name": "email"}])
def test_normalize_channel_gives_none_for_blank_and_non_strings(value: Any) -> None:
    assert normalize_channel(value) is None


def test_context_channel_is_used(detector: ChannelDetector) -> None:
    assert detector.detect(event(channel="E-Mail")) == "email"


def test_properties_channel_is_used_without_context_channel(detector: ChannelDetector) -> None:
    assert detector.detect(event(properties={"channel": "hotline"})) == "phone"


def test_context_channel_beats_properties_channel(detector: ChannelDetector) -> None:
    both = event(properties={"channel": "sms"}, channel="whatsapp")
    assert detector.detect(both) == "chat"


def test_a_blank_context_channel_falls_back_to_properties_channel(
    detector: ChannelDetector,
) -> None:
    assert detector.detect(event(properties={"channel": "dealer"}, channel="  ")) == "store"


def test_a_non_string_explicit_channel_is_ignored(detector: ChannelDetector) -> None:
    # context.channel 7 is not a channel: the built-in rules decide (a screen call → mobile_app).
    assert detector.detect(event("screen", properties={"channel": 7}, channel=7)) == "mobile_app"


def test_explicit_channel_beats_every_built_in_rule(detector: ChannelDetector) -> None:
    everything = event(
        "screen",
        channel="store",
        device={"type": "ios"},
        library={"name": "analytics-ios"},
        app={"name": "Shop"},
        campaign={"medium": "email", "source": "facebook"},
        page={"referrer": "https://www.instagram.com/"},
        userAgent=BROWSER_AGENT,
    )
    assert detector.detect(everything) == "store"


# -- 3.1 device type -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device_type", "expected"),
    [
        ("ios", "mobile_app"),
        ("android", "mobile_app"),
        ("iOS", "mobile_app"),
        ("Android", "mobile_app"),
        ("car", "iot"),
        ("vehicle", "iot"),
        ("iot", "iot"),
        ("smart_home", "iot"),
        ("wearable", "iot"),
        ("tv", "iot"),
        ("smart_speaker", "voice"),
        ("voice_assistant", "voice"),
        ("pos", "store"),
        ("kiosk", "store"),
        ("wallet", "blockchain"),
    ],
)
def test_device_type(detector: ChannelDetector, device_type: str, expected: str) -> None:
    assert detector.detect(event(device={"type": device_type})) == expected


def test_device_type_beats_the_library(detector: ChannelDetector) -> None:
    tv_app = event(device={"type": "tv"}, library={"name": "analytics-android"})
    assert detector.detect(tv_app) == "iot"


def test_device_type_beats_the_campaign(detector: ChannelDetector) -> None:
    kiosk = event(device={"type": "kiosk"}, campaign={"medium": "email"})
    assert detector.detect(kiosk) == "store"


def test_an_unknown_device_type_gives_no_answer(detector: ChannelDetector) -> None:
    assert detector.detect(event(device={"type": "desktop"})) == "other"
    assert detector.detect(event("page", device={"type": "desktop"})) == "web"


# -- 3.2 library and app -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "library",
    [
        "analytics-ios",
        "analytics-android",
        "analytics-react-native",
        "@segment/analytics-react-native",
        "analytics-flutter",
        "analytics-kotlin",
        "analytics-swift",
        "rudder-ios",
        "rudder-android",
        "rudder-ios-library",
        "Analytics-IOS",
    ],
)
def test_mobile_libraries_are_mobile_app(detector: ChannelDetector, library: str) -> None:
    assert detector.detect(event(library={"name": library, "version": "1.0"})) == "mobile_app"


def test_a_screen_call_is_mobile_app(detector: ChannelDetector) -> None:
    assert detector.detect(event("screen")) == "mobile_app"


def test_a_context_app_object_is_mobile_app(detector: ChannelDetector) -> None:
    assert detector.detect(event(app={"name": "Shop", "version": "3.1"})) == "mobile_app"


def test_a_context_app_that_is_not_an_object_gives_no_answer(detector: ChannelDetector) -> None:
    assert detector.detect(event(app="Shop")) == "other"


def test_a_mobile_library_beats_the_campaign(detector: ChannelDetector) -> None:
    opened_from_mail = event(library={"name": "analytics-ios"}, campaign={"medium": "email"})
    assert detector.detect(opened_from_mail) == "mobile_app"


def test_a_screen_call_beats_the_campaign_and_referrer(detector: ChannelDetector) -> None:
    screen = event(
        "screen",
        campaign={"medium": "email"},
        page={"referrer": "https://www.instagram.com/"},
    )
    assert detector.detect(screen) == "mobile_app"


@pytest.mark.parametrize(
    "library",
    [
        "analytics.js",
        "analytics-next",
        "@segment/analytics-next",
        "rudderanalytics.js",
        "rudder-sdk-js",
        "posthog-js",
        "touchpoints.js",
        "Analytics.JS",
    ],
)
def test_web_libraries_are_web(detector: ChannelDetector, library: str) -> None:
    assert detector.detect(event(library={"name": library})) == "web"


@pytest.mark.parametrize(
    "library",
    [
        "analytics-python",
        "analytics-node",
        "analytics-ruby",
        "analytics-go",
        "analytics-java",
        "analytics-php",
        # the web library names only count as a whole name
        "my-analytics.js-fork",
    ],
)
def test_server_libraries_without_hints_are_other(detector: ChannelDetector, library: str) -> None:
    assert detector.detect(event(library={"name": library})) == "other"


def test_a_server_library_with_a_campaign_takes_the_campaign(detector: ChannelDetector) -> None:
    sent = event(library={"name": "analytics-python"}, campaign={"medium": "sms"})
    assert detector.detect(sent) == "sms"


def test_rudderstack_javascript_sdk_page_view_is_web(detector: ChannelDetector) -> None:
    rudder_js = event(
        "page",
        app={
            "build": "1.0.0",
            "name": "RudderLabs JavaScript SDK",
            "namespace": "com.rudderlabs.javascript",
            "version": "2.48.0",
        },
        library={"name": "RudderLabs JavaScript SDK", "version": "2.48.0"},
        page={"url": "https://shop.example.com/", "referrer": "$direct"},
        userAgent=BROWSER_AGENT,
    )
    assert detector.detect(rudder_js) == "web"


# -- 3.3 campaign --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("medium", "expected"),
    [
        ("email", "email"),
        ("e-mail", "email"),
        ("newsletter", "email"),
        ("Email", "email"),
        (" EMAIL ", "email"),
        ("sms", "sms"),
        ("text", "sms"),
        ("mms", "sms"),
        ("social", "social"),
        ("paid_social", "social"),
        ("organic_social", "social"),
        ("social-media", "social"),
        ("chat", "chat"),
        ("messenger", "chat"),
        ("push", "mobile_app"),
        ("qr", "store"),
    ],
)
def test_campaign_medium(detector: ChannelDetector, medium: str, expected: str) -> None:
    assert detector.detect(event(campaign={"medium": medium, "name": "spring"})) == expected


@pytest.mark.parametrize(
    "source",
    [
        "facebook",
        "fb",
        "instagram",
        "ig",
        "linkedin",
        "tiktok",
        "youtube",
        "x",
        "Facebook_Ads",
        "instagram-story",
        "l.facebook.com",
        "lnkd.in",
    ],
)
def test_campaign_source_naming_a_social_network(detector: ChannelDetector, source: str) -> None:
    assert detector.detect(event(campaign={"source": source})) == "social"


def test_a_social_source_with_a_paid_medium_is_social(detector: ChannelDetector) -> None:
    assert detector.detect(event(campaign={"medium": "cpc", "source": "facebook"})) == "social"


def test_the_medium_beats_the_source(detector: ChannelDetector) -> None:
    assert detector.detect(event(campaign={"medium": "email", "source": "facebook"})) == "email"


@pytest.mark.parametrize(
    "campaign",
    [
        {"medium": "cpc", "source": "google"},
        {"medium": "cpc"},
        {"medium": "display", "source": "bing"},
        {"source": "google"},
        {"source": "foxnews"},  # contains "x" and "fox" but names no social network
    ],
)
def test_other_campaigns_give_no_answer(
    detector: ChannelDetector, campaign: dict[str, str]
) -> None:
    # "Other media (such as cpc) give no answer, so the event falls through to the next rules."
    assert detector.detect(event(campaign=campaign)) == "other"
    assert detector.detect(event("page", campaign=campaign)) == "web"


def test_the_campaign_beats_a_web_library(detector: ChannelDetector) -> None:
    # the documented example: a page view that arrives from a newsletter link is e-mail
    newsletter_visit = event(
        "page",
        library={"name": "analytics.js"},
        campaign={"medium": "newsletter", "source": "crm"},
        page={"url": "https://shop.example.com/?utm_medium=newsletter"},
        userAgent=BROWSER_AGENT,
    )
    assert detector.detect(newsletter_visit) == "email"


def test_the_campaign_beats_the_referrer(detector: ChannelDetector) -> None:
    both = event(campaign={"medium": "sms"}, page={"referrer": "https://l.instagram.com/"})
    assert detector.detect(both) == "sms"


# -- 3.4 referrer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "referrer",
    [
        "https://l.facebook.com/l.php?u=https%3A%2F%2Fshop.example.com",
        "https://m.facebook.com/",
        "https://www.instagram.com/p/abc/",
        "https://t.co/Xyz123",
        "https://lnkd.in/abc",
        "https://www.linkedin.com/feed/",
        "https://youtu.be/abcdef",
        "https://www.youtube.com/watch?v=1",
        "https://x.com/someone/status/1",
        "https://www.reddit.com/r/cars/",
        "instagram.com/p/abc",  # no scheme
        "https://WWW.TIKTOK.COM/@shop",
    ],
)
def test_social_referrer(detector: ChannelDetector, referrer: str) -> None:
    assert detector.detect(event(page={"url": "https://a.example/", "referrer": referrer})) == (
        "social"
    )
    assert detector.detect(event(referrer={"url": referrer})) == "social"


@pytest.mark.parametrize(
    "referrer",
    [
        "https://mail.google.com/mail/u/0/",
        "https://outlook.live.com/mail/0/inbox",
        "https://outlook.office365.com/owa/",
        "https://mail.yahoo.com/d/folders/1",
        "https://web.de/",
        "https://navigator.web.de/mail",
        "https://www.gmx.net/",
        "https://email.t-online.de/",
    ],
)
def test_webmail_referrer_is_email(detector: ChannelDetector, referrer: str) -> None:
    assert detector.detect(event(page={"referrer": referrer})) == "email"
    assert detector.detect(event(referrer={"url": referrer})) == "email"


@pytest.mark.parametrize(
    "referrer",
    [
        "https://www.google.com/",
        "https://www.fox.com/",  # ends in "x.com" but is not x.com
        "https://outlook.live.com.evil.example/",  # a mail host only as a prefix
        "https://mail.example.org/",
        "$direct",
        "not a url at all",
    ],
)
def test_other_referrers_give_no_answer(detector: ChannelDetector, referrer: str) -> None:
    assert detector.detect(event(referrer={"url": referrer})) == "other"


def test_page_referrer_is_read_before_context_referrer(detector: ChannelDetector) -> None:
    both = event(
        page={"referrer": "https://mail.google.com/"},
        referrer={"url": "https://www.facebook.com/"},
    )
    assert detector.detect(both) == "email"


def test_the_referrer_beats_web_signals(detector: ChannelDetector) -> None:
    from_instagram = event(
        "page",
        library={"name": "analytics.js"},
        page={"url": "https://shop.example.com/", "referrer": "https://l.instagram.com/"},
        userAgent=BROWSER_AGENT,
    )
    assert detector.detect(from_instagram) == "social"


# -- 3.5 web signals -----------------------------------------------------------------------------


def test_a_page_call_is_web(detector: ChannelDetector) -> None:
    assert detector.detect(event("page")) == "web"


def test_a_context_page_object_is_web(detector: ChannelDetector) -> None:
    assert detector.detect(event(page={"url": "https://shop.example.com/cart"})) == "web"


@pytest.mark.parametrize(
    "agent",
    [
        BROWSER_AGENT,
        "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "Something Edg/120.0",
    ],
)
def test_a_browser_user_agent_is_web(detector: ChannelDetector, agent: str) -> None:
    assert detector.detect(event(userAgent=agent)) == "web"


@pytest.mark.parametrize("agent", ["python-requests/2.31.0", "okhttp/4.12.0", "curl/8.5.0", ""])
def test_a_non_browser_user_agent_gives_no_answer(detector: ChannelDetector, agent: str) -> None:
    assert detector.detect(event(userAgent=agent)) == "other"


# -- 4. fallback ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        {},
        {"type": "track", "event": "Order Completed", "userId": "u1"},
        {"type": "identify", "userId": "u1", "context": {}},
        {"type": "track", "context": "not an object", "properties": "nor this"},
        {"type": "group", "context": {"device": "tv", "library": "analytics-ios"}},
    ],
)
def test_without_any_hint_the_channel_is_other(
    detector: ChannelDetector, message: dict[str, Any]
) -> None:
    assert detector.detect(message) == "other"


def test_detect_parts_uses_the_given_type_and_context(detector: ChannelDetector) -> None:
    # the collector passes the route's type and the merged batch context
    message = {"userId": "u1", "context": {}}
    assert detector.detect_parts("screen", {}, message) == "mobile_app"
    assert detector.detect_parts("track", {"campaign": {"medium": "sms"}}, message) == "sms"
    assert detector.detect_parts("track", None, message) == "other"


# -- 2. user rules and the order -----------------------------------------------------------------


def rule(field: str, channel: str, **condition: Any) -> ChannelRule:
    return ChannelRule.model_validate({"field": field, "channel": channel, **condition})


def test_user_rule_equals_is_case_insensitive() -> None:
    detector = ChannelDetector([rule("context.library.name", "sms", equals="twilio-webhook")])
    assert detector.detect(event(library={"name": "Twilio-Webhook"})) == "sms"
    assert detector.detect(event(library={"name": "twilio"})) == "other"


def test_user_rule_in() -> None:
    detector = ChannelDetector(
        [rule("event", "phone", **{"in": ["Call Started", "Call Completed"]})]
    )
    call = {"type": "track", "userId": "u1", "event": "call completed"}
    order = {"type": "track", "userId": "u1", "event": "Order Completed"}
    assert detector.detect(call) == "phone"
    assert detector.detect(order) == "other"


def test_user_rule_matches_is_a_case_insensitive_search() -> None:
    detector = ChannelDetector(
        [rule("properties.touchpoint", "store", matches="^(dealer|showroom)")]
    )
    assert detector.detect(event(properties={"touchpoint": "Showroom Munich"})) == "store"
    assert detector.detect(event(properties={"touchpoint": "online dealer"})) == "other"


def test_user_rule_exists() -> None:
    present = ChannelDetector([rule("context.wallet", "blockchain", exists=True)])
    absent = ChannelDetector([rule("context.wallet", "store", exists=False)])
    with_wallet = event(wallet={"address": "0xabc"})
    without = event()
    assert present.detect(with_wallet) == "blockchain"
    assert present.detect(without) == "other"
    assert absent.detect(without) == "store"
    assert absent.detect(with_wallet) == "other"


def test_user_rule_on_the_type_field() -> None:
    detector = ChannelDetector([rule("type", "voice", equals="identify")])
    assert detector.detect({"type": "identify", "userId": "u1"}) == "voice"
    assert detector.detect_parts("identify", {}, {"userId": "u1"}) == "voice"


def test_user_rules_override_built_in_rules() -> None:
    detector = ChannelDetector([rule("context.library.name", "iot", equals="analytics-android")])
    assert detector.detect(event(library={"name": "analytics-android"})) == "iot"
    # the built-ins still answer for what no rule matches
    assert detector.detect(event(library={"name": "analytics-ios"})) == "mobile_app"


def test_user_rules_override_the_campaign_and_device() -> None:
    detector = ChannelDetector([rule("properties.source", "phone", equals="callcenter")])
    mixed = event(
        properties={"source": "callcenter"}, device={"type": "ios"}, campaign={"medium": "email"}
    )
    assert detector.detect(mixed) == "phone"


def test_the_first_matching_user_rule_wins() -> None:
    detector = ChannelDetector(
        [
            rule("event", "chat", matches="chat"),
            rule("event", "phone", matches="call"),
        ]
    )
    message = {"type": "track", "userId": "u1", "event": "Chat turned into call"}
    assert detector.detect(message) == "chat"


def test_explicit_channel_beats_user_rules() -> None:
    detector = ChannelDetector([rule("event", "phone", exists=True)])
    message = {"type": "track", "userId": "u1", "event": "E", "context": {"channel": "sms"}}
    assert detector.detect(message) == "sms"


def test_builtin_false_turns_off_the_built_in_rules() -> None:
    detector = ChannelDetector(builtin=False)
    assert detector.detect(event("screen", library={"name": "analytics-ios"})) == "other"
    assert detector.detect(event("page", campaign={"medium": "email"})) == "other"
    # explicit channels are not built-in rules
    assert detector.detect(event(channel="E-Mail")) == "email"


def test_builtin_false_keeps_the_user_rules() -> None:
    detector = ChannelDetector([rule("event", "phone", equals="Call Started")], builtin=False)
    assert detector.detect({"type": "track", "userId": "u", "event": "Call Started"}) == "phone"
    assert detector.detect({"type": "page", "userId": "u", "context": {"page": {}}}) == "other"


def test_user_rule_equals_matches_a_zero_value() -> None:
    detector = ChannelDetector([rule("properties.floor", "store", equals="0")])
    assert detector.detect(event(properties={"floor": 0})) == "store"
