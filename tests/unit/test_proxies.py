"""Trusted proxies: X-Forwarded-For and X-Forwarded-Proto are believed only from a peer the
operator trusts; behind a chain of them, the client is the last untrusted address."""

from __future__ import annotations

import pytest
from starlette.requests import Request

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


def _request(peer: str | None, **headers: str) -> Request:
    scope = {
        "type": "http",
        "scheme": "http",
        "method": "GET",
        "path": "/",
        "query_string": b"",
        "server": ("127.0.0.1", 8080),
        "client": (peer, 50000) if peer else None,
        "headers": [(name.replace("_", "-").encode(), v.encode()) for name, v in headers.items()],
    }
    return Request(scope)


def test_a_requests_client_and_https_are_read_from_a_trusted_peer_only() -> None:
    """What the API's audit log and the dashboard's sign-in both ask."""
    proxies = TrustedProxies(["10.0.0.0/8"])
    chain = {"x_forwarded_for": "1.2.3.4, 198.51.100.1, 10.9.9.9", "x_forwarded_proto": "https"}
    behind = _request("10.1.2.3", **chain)
    assert proxies.client_address(behind) == "198.51.100.1" and proxies.over_https(behind)
    direct = _request("203.0.113.9", **chain)
    assert proxies.client_address(direct) == "203.0.113.9" and not proxies.over_https(direct)
    nobody = _request(None, **chain)
    assert proxies.client_address(nobody) is None and not proxies.over_https(nobody)
