"""How long `musicnft run`'s drain lets a stage go without progress before it calls it hung:
5 minutes by default (a batch commits in seconds), 5 s to a day on request, a clear error else."""

from __future__ import annotations

import pytest

from musicnft.settings import ConfigError, Settings


def test_the_default_is_five_minutes() -> None:
    assert Settings.from_env({}).stage_stall_seconds == 300.0


@pytest.mark.parametrize("value", ["5", "86400", "42.5"])
def test_any_value_from_5_seconds_to_a_day_is_taken(value: str) -> None:
    settings = Settings.from_env({"MUSICNFT_STAGE_STALL_SECONDS": value})
    assert settings.stage_stall_seconds == float(value)


@pytest.mark.parametrize("value", ["1", "86401", "soon"])
def test_anything_else_is_a_clear_error(value: str) -> None:
    with pytest.raises(ConfigError, match="MUSICNFT_STAGE_STALL_SECONDS"):
        Settings.from_env({"MUSICNFT_STAGE_STALL_SECONDS": value})
