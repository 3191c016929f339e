"""The labelled data: 3,200 human-rated tweets (Hutto & Gilbert, ICWSM 2014; see data/README.md).

Shipped inside the package (`musicnft/model/data/`), so a fresh clone trains without `../shared`.
Each row is a tweet and the mean of about 20 human ratings on -4..+4; the model learns that mean
divided by 4.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

GOLD_PATH = Path(__file__).with_name("data") / "tweets_sentiment_gold.tsv"
GOLD_SOURCE = (
    "Hutto & Gilbert (2014), VADER tweet ground truth (MIT license), a fixed 3,200 of 4,200 tweets"
)


@dataclass(frozen=True)
class Labelled:
    ids: tuple[str, ...]
    texts: tuple[str, ...]
    ratings: tuple[float, ...]  # mean human rating, -4..+4
    sha256: str

    def __len__(self) -> int:
        return len(self.ids)


def load_gold(path: Path = GOLD_PATH) -> Labelled:
    """The labelled tweets; a malformed line raises naming its line number (the file is ours)."""
    data = path.read_bytes()
    ids: list[str] = []
    texts: list[str] = []
    ratings: list[float] = []
    reader = csv.reader(data.decode("utf-8").splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader)
    if header[:3] != ["id", "mean_rating", "text"]:
        raise ValueError(f"{path}: header {header!r} is not id, mean_rating, text")
    for number, row in enumerate(reader, start=2):
        if len(row) < 3:
            raise ValueError(f"{path}:{number}: expected 3 tab-separated columns")
        rating = float(row[1])
        if not -4.0 <= rating <= 4.0:
            raise ValueError(f"{path}:{number}: rating {rating} outside -4..4")
        ids.append(row[0])
        ratings.append(rating)
        texts.append("\t".join(row[2:]))
    return Labelled(tuple(ids), tuple(texts), tuple(ratings), hashlib.sha256(data).hexdigest())
