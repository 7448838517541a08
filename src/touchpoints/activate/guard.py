"""The guard against sending into the server's own network (SSRF): a destination's host is
resolved before every attempt, and an address that is not public (private, loopback,
link-local, multicast, reserved, unspecified) is refused unless
``destinations_allow_private`` is set (tests on 127.0.0.1, a receiver on the LAN)."""

from __future__ import annotations

import ipaddress
import socket


class Refused(Exception):
    """The destination's address may not be sent to; the message says which and why."""


def check_host(host: str, port: int, allow_private: bool) -> None:
    """Raise :class:`Refused` when ``host`` resolves to an address that is not public (or
    does not resolve), unless ``allow_private``."""
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"{host} does not resolve ({exc})") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global or address.is_multicast:
            raise Refused(
                f"{host} resolves to {address}, a private, loopback or reserved address; "
                "set destinations_allow_private to send there"
            )
