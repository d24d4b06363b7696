"""``billing-embedded --help`` says what it does, and a command it does not know is refused: neither
starts a platform or its database server (a typo must not start one)."""

from __future__ import annotations

from pathlib import Path

import pytest
from billing_embedded.__main__ import main


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("BILLING_DATA_DIR", str(data))
    return data


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_the_usage_and_starts_nothing(
    data_dir: Path, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([flag])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: billing-embedded") and "dead-letters" in out
    assert not data_dir.exists()


def test_an_unknown_command_is_refused_and_starts_nothing(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["dead-leters", "list"])
    assert exit_.value.code == 2
    assert "unknown command 'dead-leters'" in capsys.readouterr().err
    assert not data_dir.exists()
