"""One local Spark session for the Spark tests (Java 17: `make java`): local[2], two shuffle
partitions, no UI, so a micro-batch of the small test lakes takes about a second."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("musicnft-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.streaming.minBatchesToRetain", "10")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    # py4j logs each connection it closes, also from finalizers at interpreter exit (after
    # pytest closed its capture streams: "Logging error" noise)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    yield session
    session.stop()
