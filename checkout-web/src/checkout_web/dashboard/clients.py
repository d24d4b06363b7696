"""Who is asking, as far as a proxy in front may be believed: the client address (sign-in throttles,
and what checkout-web tells the gateway's own token throttle) and whether the request came over https
(the session cookie's ``Secure``). The same rule as the gateway's ``token_throttle``: forwarded headers
count only when the TCP peer is a trusted proxy, and then only the hops trusted proxies added."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip())


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None, trusted: Sequence[Network]) -> bool:
    return ip is not None and any(ip in net for net in trusted)


def client_address(request: web.Request, trusted: Sequence[Network]) -> str:
    """The peer, or behind trusted proxies the nearest hop of ``X-Forwarded-For`` that is not one."""
    peer = request.remote or ""
    peer_ip = _address(peer)
    if peer_ip is None:
        return peer or "unknown"
    forwarded_for = request.headers.get("X-Forwarded-For")
    if not forwarded_for or not _trusted(peer_ip, trusted):
        return str(peer_ip)
    hop = peer_ip
    for entry in reversed(forwarded_for.split(",")):
        ip = _address(entry)
        if ip is None:  # a malformed entry: trust nothing beyond it
            break
        hop = ip
        if not _trusted(ip, trusted):
            break
    return str(hop)


def came_over_https(request: web.Request, trusted: Sequence[Network]) -> bool:
    if request.secure:
        return True
    if not _trusted(_address(request.remote or ""), trusted):
        return False
    # The nearest proxy's word (the last entry), as for the address.
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
    return proto == "https"
