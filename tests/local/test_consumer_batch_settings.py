"""The consumer's batch settings: 5,000 records by default (issue #14 items 4 and 9: as fast as
10,000 in the bench, and the consumer stays under 300 MB), anything up to Lambda's 10,000 on
request, and a clear error past it."""

from __future__ import annotations

import pytest

from musicnft.settings import ConfigError, Settings


def test_the_default_batch_is_5000_records_with_a_quarter_second_window() -> None:
    settings = Settings.from_env({})
    assert settings.consumer_batch_size == 5_000
    assert settings.consumer_batch_window_seconds == 0.25


@pytest.mark.parametrize("value", ["1", "10000"])
def test_any_batch_lambda_allows_can_be_asked_for(value: str) -> None:
    settings = Settings.from_env({"MUSICNFT_CONSUMER_BATCH_SIZE": value})
    assert settings.consumer_batch_size == int(value)


@pytest.mark.parametrize("value", ["0", "10001", "lots"])
def test_a_batch_lambda_would_refuse_is_a_clear_error(value: str) -> None:
    with pytest.raises(ConfigError, match="MUSICNFT_CONSUMER_BATCH_SIZE"):
        Settings.from_env({"MUSICNFT_CONSUMER_BATCH_SIZE": value})
