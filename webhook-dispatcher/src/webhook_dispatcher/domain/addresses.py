"""The SSRF address filter: which resolved addresses a webhook may connect to. Pure, table-tested."""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# Ranges the stdlib flags do not cover on every Python 3.11 patch release.
_EXTRA_BLOCKED = (
    ipaddress.ip_network("0.0.0.0/8"),  # "this network"
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("198.18.0.0/15"),  # benchmarking
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64: could reach any IPv4 address through a translator
    ipaddress.ip_network("64:ff9b:1::/48"),
    ipaddress.ip_network("2002::/16"),  # 6to4 embeds an IPv4 address
    ipaddress.ip_network("fec0::/10"),  # deprecated site-local
)


def refusal_reason(address: str) -> str | None:
    """Why a webhook must not connect to ``address`` (an IP literal), or None when it may."""
    try:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        # ::ffff:a.b.c.d and the deprecated ::a.b.c.d reach the IPv4 address inside them.
        mapped = ip.ipv4_mapped
        if mapped is not None:
            reason = refusal_reason(str(mapped))
            return f"IPv4-mapped {reason}" if reason else None
        if ip.teredo is not None:
            return "Teredo tunnel address"
    return _classify(ip)


def _classify(ip: IPAddress) -> str | None:
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_multicast:
        return "multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "carrier-grade NAT address (100.64.0.0/10)"
    if isinstance(ip, ipaddress.IPv6Address) and ip in ipaddress.ip_network("fc00::/7"):
        return "unique local address"
    if any(ip in net for net in _EXTRA_BLOCKED if net.version == ip.version):
        return "reserved address"
    if ip.is_reserved:
        return "reserved address"
    if ip.is_private:
        return "private address"
    if not ip.is_global:
        return "non-global address"
    return None
