from __future__ import annotations

import pytest
from checkout_web.__main__ import main


class TestMain:
    def test_a_subcommand_is_required(self) -> None:
        with pytest.raises(SystemExit) as info:
            main([])
        assert info.value.code == 2

    def test_unknown_subcommand_is_rejected(self) -> None:
        with pytest.raises(SystemExit) as info:
            main(["deploy"])
        assert info.value.code == 2
