"""Trusted proxies: X-Forwarded-For and X-Forwarded-Proto are believed only from a peer the
operator trusts; behind a chain of them, the client is the last untrusted address."""

from __future__ import annotations

import pytest

from touchpoints.access.proxies import TrustedProxies


def test_forwarded_headers_are_ignored_from_an_untrusted_peer() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    assert proxies.client("203.0.113.9", "198.51.100.1") == "203.0.113.9"
    assert not proxies.https("http", "203.0.113.9", "https")
    assert TrustedProxies().client("127.0.0.1", "198.51.100.1") == "127.0.0.1"


def test_a_trusted_proxy_gives_the_client_and_the_scheme() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "::1"])
    assert proxies.client("10.1.2.3", "198.51.100.1") == "198.51.100.1"
    assert proxies.https("http", "10.1.2.3", "https")
    assert proxies.https("http", "::1", "http, https")  # the last value: the proxy's own
    assert not proxies.https("http", "10.1.2.3", "https, http")
    assert proxies.https("https", None, None)
    # A chain: client → 10.9.9.9 (trusted) → 10.1.2.3 (trusted, the peer). A client's own
    # made-up entry in front is not taken.
    chain = "1.2.3.4, 198.51.100.1, 10.9.9.9"
    assert proxies.client("10.1.2.3", chain) == "198.51.100.1"


def test_a_bad_network_is_named() -> None:
    with pytest.raises(ValueError, match="'10.0.0.300' is not an IP address"):
        TrustedProxies(["10.0.0.300"])
