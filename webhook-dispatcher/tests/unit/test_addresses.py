"""The SSRF address filter over a table. Pure: no traffic is ever sent to these addresses."""

from __future__ import annotations

import pytest
from webhook_dispatcher.domain.addresses import AddressPolicy, is_platform_address, parse_host_ports, refusal_reason

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("169.254.0.1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "reserved"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.0.8", "reserved"),
    ("198.18.0.1", "reserved"),
    ("192.0.2.1", "private"),  # TEST-NET-1 documentation range
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "unique local"),
    ("fd12:3456:789a::1", "unique local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:10.1.2.3", "IPv4-mapped private"),
    ("::ffff:169.254.169.254", "IPv4-mapped link-local"),
    ("::ffff:100.64.1.1", "IPv4-mapped carrier-grade NAT"),
    ("64:ff9b::a9fe:a9fe", "reserved"),  # NAT64 of 169.254.169.254
    ("2002:7f00:1::1", "reserved"),  # 6to4 of 127.0.0.1
    ("2001:db8::1", ""),  # documentation
    ("not-an-ip", "not an IP"),
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.63.255.255",
    "100.128.0.1",
    "172.32.0.1",
    "2606:4700::1111",
    "::ffff:8.8.8.8",
]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_refused(address: str, reason: str) -> None:
    refused = refusal_reason(address)
    assert refused is not None
    assert reason in refused


@pytest.mark.parametrize("address", ALLOWED)
def test_allowed(address: str) -> None:
    assert refusal_reason(address) is None


class TestPlatformAddresses:
    PLATFORM = frozenset({("127.0.0.1", 8000), ("0.0.0.0", 8001), ("10.1.2.3", 8002), ("::1", 8003)})

    @pytest.mark.parametrize(
        ("address", "port"),
        [
            ("127.0.0.1", 8000),
            ("127.0.0.2", 8000),
            ("::1", 8000),
            ("::ffff:127.0.0.1", 8000),
            ("127.0.0.1", 8001),
            ("::1", 8001),
            ("10.1.2.3", 8002),
            ("::ffff:10.1.2.3", 8002),
            ("127.0.0.1", 8003),
            ("::1", 8003),
        ],
    )
    def test_platform_listeners(self, address: str, port: int) -> None:
        assert is_platform_address(address, port, self.PLATFORM)

    @pytest.mark.parametrize(
        ("address", "port"), [("127.0.0.1", 8009), ("10.1.2.3", 8000), ("10.1.2.4", 8002), ("8.8.8.8", 8000)]
    )
    def test_other_listeners(self, address: str, port: int) -> None:
        assert not is_platform_address(address, port, self.PLATFORM)

    def test_parse(self) -> None:
        assert parse_host_ports(" 127.0.0.1:8000, [::1]:8001,Gateway:80 ,") == {
            ("127.0.0.1", 8000),
            ("::1", 8001),
            ("gateway", 80),
        }


class TestPolicy:
    def test_platform_first_whatever_is_allowed(self) -> None:
        policy = AddressPolicy(
            allow_loopback=True, allowed_hosts=frozenset({"localhost"}), platform=frozenset({("127.0.0.1", 8000)})
        )
        assert policy.refusal("localhost", "::1", 8000) == "a port of the platform itself"
        assert policy.refusal("localhost", "::1", 9000) is None

    def test_allow_loopback_allows_only_loopback(self) -> None:
        policy = AddressPolicy(allow_loopback=True)
        assert policy.refusal("h", "127.0.0.1", 9000) is None
        assert policy.refusal("h", "::ffff:127.0.0.5", 9000) is None
        assert policy.refusal("h", "10.0.0.1", 9000) == "private address"
        assert policy.refusal("h", "169.254.169.254", 80) == "link-local address"

    def test_default_refuses_loopback(self) -> None:
        assert AddressPolicy().refusal("localhost", "::1", 9000) == "loopback address"
        assert AddressPolicy().refusal("example.com", "93.184.216.34", 443) is None

    def test_allowed_hosts_by_name(self) -> None:
        policy = AddressPolicy(allowed_hosts=frozenset({"receiver.internal"}))
        assert policy.refusal("Receiver.Internal.", "10.0.0.7", 443) is None
        assert policy.refusal("other.internal", "10.0.0.7", 443) == "private address"
