"""A deterministic, seeded stand-in for OpenSea's sale events of a few music collections.

The demo replays it beside the shipped post sample (`musicnft sales --source replay`, started by
`musicnft run --sales`), so the dashboard's "sales beside talk" panel fills without an API key.
The events cover the post sample's time span (2021-12-01 00:00 UTC for 75 hours) and are shaped
exactly like OpenSea API v2 sale events (`asset_events` items), so they go through the same
normalization as live ones. Sales follow the conversation: each collection's rate in a
15-minute window rises with the sample's post volume then and with the posts naming the
collection (the sample's fictional collections), so the panel shows the market moving with the
talk. Like the live API, the sample misbehaves a little: about 2% of events come twice and about
0.5% are malformed (they are dead-lettered).

Only the standard library is used; the same arguments always give the same events.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import random
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from musicnft.devtools.sample import DEFAULT_SEED, DEFAULT_START, SAMPLE_PATH

HOURS = 75  # the shipped post sample spans 2021-12-01 00:00 to 2021-12-04 02:35 UTC
WINDOW_SECONDS = 900
ETH_TOKEN = "0x0000000000000000000000000000000000000000"
WETH_TOKEN = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
USDC_TOKEN = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
ETH_USD = 4_500.0  # early December 2021, for the few sales paid in USDC

# slug, name (as the post sample writes it), typical price in ETH, base sales per window
COLLECTIONS: tuple[tuple[str, str, float, float], ...] = (
    ("genesis-tapes", "Genesis Tapes", 0.35, 0.9),
    ("lofi-apes-club", "Lofi Apes Club", 0.6, 0.6),
    ("midnight-sessions", "Midnight Sessions", 0.12, 0.8),
    ("sonic-shards", "Sonic Shards", 0.08, 1.0),
    ("bass-drop-pass", "Bass Drop Pass", 0.2, 0.5),
)
SLUGS: tuple[str, ...] = tuple(c[0] for c in COLLECTIONS)
_DUPLICATE_SHARE = 0.02
_MALFORMED_SHARE = 0.005


def _hex(rng: random.Random, n: int = 64) -> str:
    return f"0x{rng.getrandbits(4 * n):0{n}x}"


def _contract(slug: str) -> str:
    return "0x" + hashlib.sha256(f"contract:{slug}".encode()).hexdigest()[:40]


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def talk_by_window(
    path: Path = SAMPLE_PATH, start: datetime = DEFAULT_START, hours: int = HOURS
) -> tuple[list[int], dict[str, list[int]]]:
    """Posts per 15-minute window, and per collection the posts naming it, from the post sample
    (flat when the file is missing)."""
    n = hours * 4
    posts = [0] * n
    named: dict[str, list[int]] = defaultdict(lambda: [0] * n)
    if not Path(path).is_file():
        return [1] * n, {slug: [0] * n for slug in SLUGS}
    names = {name.lower(): slug for slug, name, _, _ in COLLECTIONS}
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        for line in fh:
            try:
                data = json.loads(line)["data"]
                when = datetime.fromisoformat(data["created_at"].replace("Z", "+00:00"))
                text = data["text"].lower()
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            w = int((when - start).total_seconds() // WINDOW_SECONDS)
            if not 0 <= w < n:
                continue
            posts[w] += 1
            for name, slug in names.items():
                if name in text:
                    named[slug][w] += 1
    return posts, {slug: named[slug] for slug in SLUGS}


def _event(
    rng: random.Random, slug: str, when: datetime, typical: float, buyers: list[str], heat: int
) -> dict[str, Any]:
    price_eth = typical * math.exp(rng.gauss(0, 0.45)) * (1 + 0.25 * min(heat, 4))
    roll = rng.random()
    if roll < 0.84:
        symbol, token, decimals, amount = "ETH", ETH_TOKEN, 18, price_eth
    elif roll < 0.95:
        symbol, token, decimals, amount = "WETH", WETH_TOKEN, 18, price_eth
    else:
        symbol, token, decimals, amount = "USDC", USDC_TOKEN, 6, price_eth * ETH_USD
    base_units = str(round(amount * 10**decimals))
    buyer = buyers[int(len(buyers) * rng.random() ** 2)]  # a few collectors buy often
    seller = _hex(rng, 40)
    return {
        "event_type": "sale",
        "event_timestamp": int(when.timestamp()),
        "chain": "ethereum",
        "transaction": _hex(rng),
        "order_hash": _hex(rng),
        "protocol_address": "0x00000000000000adc04c56bf30ac9d3c0aaf14dc",
        "closing_date": int(when.timestamp()),
        "seller": seller,
        "buyer": buyer,
        "quantity": 1,
        "payment": {
            "quantity": base_units,
            "token_address": token,
            "decimals": decimals,
            "symbol": symbol,
        },
        "nft": {
            "identifier": str(rng.randint(1, 5000)),
            "collection": slug,
            "contract": _contract(slug),
            "token_standard": "erc721",
            "name": None,
        },
    }


def _malformed(rng: random.Random, event: dict[str, Any]) -> dict[str, Any]:
    bad = json.loads(json.dumps(event))
    kind = rng.randrange(4)
    if kind == 0:
        bad["payment"]["quantity"] = "0.35 ETH"
    elif kind == 1:
        del bad["transaction"]
    elif kind == 2:
        bad["payment"]["quantity"] = "-" + bad["payment"]["quantity"]
    else:
        bad["event_timestamp"] = "yesterday"
    return bad


def generate_sale_events(
    seed: int = DEFAULT_SEED,
    start: datetime = DEFAULT_START,
    hours: int = HOURS,
    posts_path: Path = SAMPLE_PATH,
) -> list[dict[str, Any]]:
    """The sample's OpenSea sale events, in event-time order (re-deliveries and malformed
    events included)."""
    rng = random.Random(f"sales:{seed}")
    posts, named = talk_by_window(posts_path, start, hours)
    mean = (sum(posts) / len(posts)) or 1.0
    buyers = [_hex(rng, 40) for _ in range(400)]
    events: list[tuple[float, int, dict[str, Any]]] = []
    order = 0
    for w in range(hours * 4):
        window = start + timedelta(seconds=w * WINDOW_SECONDS)
        for slug, _name, typical, base in COLLECTIONS:
            heat = named[slug][w]
            lam = base * (0.3 + 0.7 * posts[w] / mean) + 0.8 * heat
            for _ in range(_poisson(rng, lam)):
                when = window + timedelta(seconds=rng.uniform(0, WINDOW_SECONDS - 1))
                event = _event(rng, slug, when, typical, buyers, heat)
                if rng.random() < _MALFORMED_SHARE:
                    event = _malformed(rng, event)
                order += 1
                events.append((when.timestamp(), order, event))
                if rng.random() < _DUPLICATE_SHARE:  # OpenSea answers it again a little later
                    order += 1
                    events.append((when.timestamp() + rng.uniform(1, 120), order, event))
    events.sort(key=lambda e: (e[0], e[1]))
    return [e for _, _, e in events]


def summary(events: list[dict[str, Any]]) -> dict[str, int]:
    """Events per collection (for logs and tests)."""
    return dict(
        Counter(
            (e.get("nft") or {}).get("collection", "?") if isinstance(e, dict) else "?"
            for e in events
        )
    )
