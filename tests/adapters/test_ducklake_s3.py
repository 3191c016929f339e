"""The embedded warehouse with its data files on S3 (issue #21 item 7): a local S3 (moto server)
holds the Parquet files, the SQLite catalog stays local; inserts, a window replacement, duplicate
removal, maintenance and a read-only reader all work, and the credentials never reach an error."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.contract.tables import WINDOW_METRICS_SCHEMA
from musicnft.contract.windows import window_key
from tests.support.aws import client, moto_server

pytestmark = pytest.mark.slow

BUCKET = "musicnft-warehouse"
W = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def s3() -> Iterator[str]:
    with moto_server() as url:
        client("s3", url).create_bucket(Bucket=BUCKET)
        yield url


def _row(pid: str) -> dict:
    return {
        "post_id": pid,
        "platform": "x",
        "created_at": W,
        "ingested_at": W,
        "text": "music nft",
        "schema_version": 1,
    }


def _window(count: int) -> pa.Table:
    return pa.Table.from_pylist(
        [{"window_start": W, "keyword": "all", "post_count": count, "updated_at": W}],
        schema=WINDOW_METRICS_SCHEMA,
    )


def test_the_warehouse_keeps_its_data_files_on_s3(s3: str, tmp_path: Path) -> None:
    data_path = f"s3://{BUCKET}/warehouse/"
    wh = EmbeddedWarehouse(tmp_path / "wh", data_path=data_path, s3_endpoint_url=s3)
    # WHEN the hot path inserts (a repeated id skipped) and a window is replaced twice
    wh.insert_rows("posts_hot", [_row("x:1"), _row("x:2")], ["x:1", "x:2"])
    assert wh.insert_rows("posts_hot", [_row("x:2")], ["x:2"]).skipped_duplicates == 1
    wh.append("posts_hot", pa.Table.from_pylist([_row("x:1")], schema=wh_schema()))
    wh.replace_partition("window_metrics_15m", window_key(W), _window(1))
    wh.replace_partition("window_metrics_15m", window_key(W), _window(2))
    assert wh.remove_duplicates("posts_hot", "post_id", ["x:1"]) == 1
    wh.maintain()
    # THEN the data files are objects in the bucket, none on the local disk
    keys = [
        o["Key"]
        for o in client("s3", s3).list_objects_v2(Bucket=BUCKET, Prefix="warehouse/")["Contents"]
    ]
    assert any(k.endswith(".parquet") for k in keys)
    assert not list((tmp_path / "wh").rglob("*.parquet"))
    # AND a read-only reader (the dashboard's, `sql`'s) sees exactly the current tables
    reader = EmbeddedWarehouse(tmp_path / "wh", read_only=True, data_path=data_path,
                               s3_endpoint_url=s3)  # fmt: skip
    assert sorted(reader.query("SELECT post_id FROM posts_hot").column(0).to_pylist()) == [
        "x:1",
        "x:2",
    ]
    assert reader.query("SELECT post_count FROM window_metrics_15m").column(0).to_pylist() == [2]


def wh_schema() -> pa.Schema:
    from musicnft.contract.tables import POSTS_HOT_SCHEMA

    return POSTS_HOT_SCHEMA


def test_no_credentials_is_a_clear_error_and_secrets_never_show(
    s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
    wh = EmbeddedWarehouse(tmp_path / "wh", data_path="s3://no-such-bucket/x/", s3_endpoint_url=s3)
    with pytest.raises(Exception) as failure:
        wh.insert_rows("posts_hot", [_row("x:1")], ["x:1"])
    assert "very-secret-value" not in str(failure.value)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    nocreds = EmbeddedWarehouse(tmp_path / "wh2", data_path="s3://b/x/", s3_endpoint_url=s3)
    with pytest.raises(RuntimeError, match="no AWS credentials"):
        nocreds.insert_rows("posts_hot", [_row("x:1")], ["x:1"])
