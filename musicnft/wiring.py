"""Composition root for the hot path: settings → adapters. The only place a profile is looked at.

Business logic receives ports (stream, lake, warehouse, dead-letter) and never asks which profile
it runs in; later profiles add their adapters here.
"""

from __future__ import annotations

from musicnft.deadletter import DeadLetter
from musicnft.embedded_warehouse import EmbeddedWarehouse
from musicnft.keywords import KeywordMatcher
from musicnft.lake import LocalLake
from musicnft.local_stream import LocalStream
from musicnft.settings import Settings


def open_stream(settings: Settings) -> LocalStream:
    return LocalStream(settings.stream_path, shards=settings.stream_shards)


def open_lake(settings: Settings) -> LocalLake:
    return LocalLake(settings.lake_dir)


def open_warehouse(settings: Settings) -> EmbeddedWarehouse:
    return EmbeddedWarehouse(settings.warehouse_dir)


def dead_letter(settings: Settings, stage: str) -> DeadLetter:
    return DeadLetter(settings.dead_letter_dir, stage)


def keyword_matcher(settings: Settings) -> KeywordMatcher:
    return KeywordMatcher(settings.keywords)
