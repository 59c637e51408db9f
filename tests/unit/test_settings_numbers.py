"""A number setting the deployment gets wrong is refused at start, by name, before any request:
negative, not a number, or not finite (``inf`` would reach DynamoDB as a number it cannot store,
``nan`` compares false with every deadline)."""

from __future__ import annotations

import pytest

from connectors.settings import Settings


@pytest.mark.parametrize("raw", ["-1", "soon", "inf", "-inf", "nan", "Infinity"])
def test_a_bad_number_setting_is_refused_by_name(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_TIMEOUT_SECONDS", raw)
    with pytest.raises(ValueError, match="CONNECTOR_TIMEOUT_SECONDS"):
        Settings.from_env()


def test_a_good_number_setting_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_TIMEOUT_SECONDS", "2.5")
    assert Settings.from_env().connector_timeout_seconds == 2.5
