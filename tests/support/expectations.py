"""What a replay file should produce, computed independently of the pipeline's processes."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import to_json_record
from musicnft.hotpath.decode import ControlMessage, RejectedRecord
from musicnft.hotpath.normalize_x import normalize_x_line
from musicnft.settings import DEFAULT_KEYWORDS
from producer.replay import iter_lines


@dataclass
class Expected:
    posts: list[dict] = field(default_factory=list)  # every valid post, duplicates included
    rejected: dict[str, str] = field(default_factory=dict)  # ref -> reason
    keep_alives: int = 0
    control: int = 0

    @property
    def ids(self) -> Counter:
        return Counter(p["post_id"] for p in self.posts)

    @property
    def unique(self) -> int:
        return len(self.ids)

    @property
    def source_duplicates(self) -> int:
        return len(self.posts) - self.unique


def expected_from(path: Path, max_record_bytes: int = 1_048_576) -> Expected:
    matcher = KeywordMatcher(DEFAULT_KEYWORDS)
    now = datetime.now(UTC)
    out = Expected()
    for ref, line in iter_lines(path):
        if not line.strip():
            out.keep_alives += 1
            continue
        try:
            post = normalize_x_line(line, matcher, now)
        except ControlMessage:
            out.control += 1
            continue
        except RejectedRecord as exc:
            out.rejected[ref] = exc.reason
            continue
        size = len(json.dumps(to_json_record(post), ensure_ascii=False).encode())
        if size > max_record_bytes:
            out.rejected[ref] = "record too large"
            continue
        out.posts.append(post)
    return out
