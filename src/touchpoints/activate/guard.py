"""The guard against sending into the server's own network (SSRF): a destination's host is
resolved before every attempt, and an address that is not public (private, loopback,
link-local, multicast, reserved, unspecified) is refused unless
``destinations_allow_private`` is set (tests on 127.0.0.1, a receiver on the LAN)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit


class Refused(Exception):
    """The destination's address may not be sent to; the message says which and why."""


def check_host(host: str, port: int, allow_private: bool) -> str | None:
    """Raise :class:`Refused` when ``host`` resolves to an address that is not public (or
    does not resolve), unless ``allow_private``; else the address checked (None when
    ``allow_private``), for the caller to connect to that very address (a second lookup
    could answer otherwise: DNS rebinding)."""
    if allow_private:
        return None
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"{host} does not resolve ({exc})") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for address in addresses:
        if not address.is_global or address.is_multicast:
            raise Refused(
                f"{host} resolves to {address}, a private, loopback or reserved address; "
                "set destinations_allow_private to send there"
            )
    if not addresses:
        raise Refused(f"{host} does not resolve")
    return str(addresses[0])


def pinned(url: str, address: str | None) -> tuple[str, dict[str, str], dict[str, str]]:
    """``url`` with its host replaced by the checked ``address``, and the ``Host`` header
    and TLS server name (``sni_hostname``, which the certificate is checked against) of the
    original host; unchanged when there is no address to pin."""
    parts = urlsplit(url)
    if address is None or not parts.hostname:
        return url, {}, {}
    shown = f"[{address}]" if ":" in address else address
    netloc = shown if parts.port is None else f"{shown}:{parts.port}"
    host = parts.netloc.rpartition("@")[2]
    return (
        urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)),
        {"host": host},
        {"sni_hostname": parts.hostname},
    )
