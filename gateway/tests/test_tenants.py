from __future__ import annotations

from gateway.tenants import TenantNameCache, is_tenant_id


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestTenantNameCache:
    def test_entries_expire_after_ttl(self) -> None:
        clock = FakeClock()
        cache = TenantNameCache(30, clock=clock)
        cache.put("ten_1", "Shop")
        clock.now = 29.9
        assert cache.get("ten_1") == "Shop"
        clock.now = 30
        assert cache.get("ten_1") is None

    def test_zero_ttl_disables(self) -> None:
        cache = TenantNameCache(0, clock=FakeClock())
        cache.put("ten_1", "Shop")
        assert cache.get("ten_1") is None

    def test_size_is_bounded(self) -> None:
        clock = FakeClock()
        cache = TenantNameCache(30, clock=clock, max_entries=2)
        for i in range(5):
            cache.put(f"ten_{i}", "x")
        assert sum(cache.get(f"ten_{i}") is not None for i in range(5)) <= 2
        assert cache.get("ten_4") == "x"


class TestTenantIds:
    def test_shape(self) -> None:
        assert is_tenant_id("ten_01m80hmvgpwk4ac3v92rvxtfgw")
        for bad in ["", "ten_", "pay_01m80hmvgpwk4ac3v92rvxtfgw", "ten_01M80HMVGPWK4AC3V92RVXTFGW", "ten_x\x00"]:
            assert not is_tenant_id(bad)
