"""The SSRF address filter: which resolved addresses a webhook may connect to. Pure, table-tested."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

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


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1, and the IPv4-mapped forms of the former (which reach the same listeners)."""
    try:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _is_local(address: str) -> bool:
    # A listener on 0.0.0.0 or :: answers on every loopback address too.
    try:
        return is_loopback(address) or ipaddress.ip_address(address.split("%", 1)[0]).is_unspecified
    except ValueError:
        return False


def _same_ip(a: str, b: str) -> bool:
    try:
        left = ipaddress.ip_address(a.split("%", 1)[0])
        right = ipaddress.ip_address(b.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(left, ipaddress.IPv6Address) and left.ipv4_mapped is not None:
        left = left.ipv4_mapped
    if isinstance(right, ipaddress.IPv6Address) and right.ipv4_mapped is not None:
        right = right.ipv4_mapped
    return left == right


def parse_host_ports(raw: str) -> frozenset[tuple[str, int]]:
    """``"127.0.0.1:8000, [::1]:8001, gateway:8000"`` → {(host, port)}; raises ValueError on a bad entry."""
    entries: set[tuple[str, int]] = set()
    for part in raw.split(","):
        entry = part.strip()
        if not entry:
            continue
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{entry!r} is not host:port")
        entries.add((host.strip("[]").lower(), int(port)))
    return frozenset(entries)


def is_platform_address(address: str, port: int, platform: frozenset[tuple[str, int]]) -> bool:
    """Whether ``address:port`` (a resolved IP) is one of the platform's own listeners (``platform``:
    IP literals and ports). A loopback or wildcard listener is reached through any loopback address
    (127.0.0.2, ::1, ::ffff:127.0.0.1), so on its port every loopback address counts as it."""
    for host, platform_port in platform:
        if platform_port != port:
            continue
        if _same_ip(address, host) or (_is_local(host) and is_loopback(address)):
            return True
    return False


@dataclass(frozen=True)
class AddressPolicy:
    """Where a webhook may connect. The guard is always on; what may loosen it is explicit:
    ``allow_loopback`` (a receiver on this machine, for a local demo) and ``allowed_hosts`` (names or
    IP literals exempt from the address classes, e.g. a receiver on a private network). The
    platform's own listeners (``platform``, IP literal and port) are refused whatever is allowed."""

    allow_loopback: bool = False
    allowed_hosts: frozenset[str] = frozenset()
    platform: frozenset[tuple[str, int]] = frozenset()

    def refusal(self, host: str, address: str, port: int) -> str | None:
        """Why a webhook to ``host`` must not connect to ``address:port`` (``host`` resolved to
        ``address``), or None when it may."""
        if is_platform_address(address, port, self.platform):
            return "a port of the platform itself"
        if host.lower().rstrip(".").strip("[]") in self.allowed_hosts:
            return None
        if self.allow_loopback and is_loopback(address):
            return None
        return refusal_reason(address)
