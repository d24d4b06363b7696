from __future__ import annotations

from gateway.tenants import is_tenant_id


class TestTenantIds:
    def test_shape(self) -> None:
        assert is_tenant_id("ten_01m80hmvgpwk4ac3v92rvxtfgw")
        for bad in ["", "ten_", "pay_01m80hmvgpwk4ac3v92rvxtfgw", "ten_01M80HMVGPWK4AC3V92RVXTFGW", "ten_x\x00"]:
            assert not is_tenant_id(bad)
