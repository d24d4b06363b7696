"""The migrated schema keeps no index another one makes useless: each costs every write of its table."""

from billing_runtime.testing import redundant_indexes


async def test_no_index_is_covered_by_another(engine) -> None:  # type: ignore[no-untyped-def]
    assert await redundant_indexes(engine) == []
