"""Who is on the other end: the client's address and whether it came over https, believing
``X-Forwarded-For`` and ``X-Forwarded-Proto`` only from reverse proxies the operator trusts
(the ``trusted_proxies`` setting; by default none).

Anyone can send those headers; only a proxy the operator runs in front of touchpoints sets
them truthfully. So a request's peer (the socket's address) decides: a trusted proxy's
headers are read, anyone else's are ignored. Behind a chain of proxies, the client is the
last address in ``X-Forwarded-For`` that is not itself a trusted proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> list[Network]:
    """Addresses or CIDR networks (``10.0.0.0/8``); a ValueError names a bad one."""
    found = []
    for value in values:
        try:
            found.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network (CIDR)") from None
    return found


class TrustedProxies:
    def __init__(self, networks: Iterable[str] = ()) -> None:
        self.networks = parse_networks(networks)

    def trusts(self, address: str | None) -> bool:
        if not address or not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client's address: ``peer``, or behind trusted proxies the address they
        forwarded for."""
        if not forwarded_for or not self.trusts(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop[:100]
        return hops[0][:100] if hops else peer

    def client_address(self, connection: HTTPConnection) -> str | None:
        """The address of the client of ``connection`` (a request, a websocket): its peer's,
        or behind trusted proxies the one they forwarded for. The API's audit log and the
        dashboard's sign-in both ask here."""
        return self.client(_peer(connection), connection.headers.get("x-forwarded-for"))

    def over_https(self, connection: HTTPConnection) -> bool:
        """Whether ``connection`` came over https: to this server, or to a trusted proxy."""
        return self.https(
            connection.url.scheme, _peer(connection), connection.headers.get("x-forwarded-proto")
        )

    def https(self, scheme: str, peer: str | None, forwarded_proto: str | None) -> bool:
        """Whether the client's request came over https: to this server, or to a trusted
        proxy that says so (the last value of ``X-Forwarded-Proto``, the one it set)."""
        if scheme == "https":
            return True
        if not forwarded_proto or not self.trusts(peer):
            return False
        return forwarded_proto.split(",")[-1].strip().lower() == "https"


def _peer(connection: HTTPConnection) -> str | None:
    return connection.client.host if connection.client else None
