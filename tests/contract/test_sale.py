"""The sale contract: a stable id, exact prices, and one gate that refuses what cannot be a sale."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from musicnft.contract.sale import (
    SALE_COLUMNS,
    SaleError,
    conform_sale,
    fingerprint,
    price_from_base_units,
    sale_arrow_schema,
    sale_id,
)
from musicnft.hotpath.decode import RejectedRecord, SkipRecord
from musicnft.hotpath.normalize_opensea import normalize_opensea_event
from tests.support.fake_opensea import sale_event

NOW = datetime(2021, 12, 2, tzinfo=UTC)


def test_sale_id_is_stable_and_names_the_sale_on_chain() -> None:
    a = sale_id("ethereum", "0xABC", "0x01", "0xC0", "7")
    assert a == sale_id("Ethereum", "0xabc", "0x01", "0xc0", "7")  # EVM hex is case-insensitive
    assert a.startswith("sale:") and len(a) == 5 + 32
    assert a != sale_id("ethereum", "0xabc", "0x01", "0xc0", "8")  # another token of a sweep
    assert a != sale_id("ethereum", "0xabc", "0x02", "0xc0", "7")  # another order
    assert a != sale_id("base", "0xabc", "0x01", "0xc0", "7")  # another chain
    # base58 (Solana) keeps its case
    assert sale_id("solana", "AbC", None, None, None) != sale_id("solana", "abc", None, None, None)


@pytest.mark.parametrize(
    ("quantity", "decimals", "price"),
    [
        ("1500000000000000000", 18, Decimal("1.5")),
        ("1", 18, Decimal("0.000000000000000001")),
        ("2500000", 6, Decimal("2.5")),
        ("0", 18, Decimal(0)),
        (42, 0, Decimal(42)),
    ],
)
def test_prices_are_exact(quantity: Any, decimals: int, price: Decimal) -> None:
    assert price_from_base_units(quantity, decimals) == price


@pytest.mark.parametrize(
    ("quantity", "decimals", "reason"),
    [
        ("1.5", 18, "whole number"),
        ("-1", 18, "negative"),
        ("1e18", 18, "whole number"),
        (None, 18, "string of digits"),
        ("1", -1, "outside"),
        ("1", "18", "integer"),
        ("9" * 80, 18, "too large"),
    ],
)
def test_impossible_prices_are_refused(quantity: Any, decimals: Any, reason: str) -> None:
    with pytest.raises(SaleError, match=reason):
        price_from_base_units(quantity, decimals)


def test_an_opensea_event_becomes_a_conformed_sale() -> None:
    event = sale_event(3, "genesis-tapes", 1638352800, wei=2 * 10**17, symbol="WETH")
    row = normalize_opensea_event(event, "genesis-tapes", NOW)
    assert list(row) == list(SALE_COLUMNS)
    assert row["price"] == Decimal("0.2") and row["price_eth"] == pytest.approx(0.2)
    assert row["payment_symbol"] == "WETH" and row["quantity"] == 1
    assert row["event_timestamp"] == datetime(2021, 12, 1, 10, 0, tzinfo=UTC)
    assert row["sale_id"] == sale_id(
        "ethereum", f"0x{3:064x}", f"0x{10:064x}", f"0x{0xC0FFEE:040x}", "3"
    )
    assert row["ingested_at"] == NOW and row["source"] == "opensea"


def test_a_sale_in_another_token_has_no_eth_price() -> None:
    event = sale_event(4, "s", 1638352800, wei=4_500_000_000, symbol="USDC", decimals=6)
    row = normalize_opensea_event(event, "s", NOW)
    assert row["price"] == Decimal(4500) and row["price_eth"] is None


def test_an_event_without_an_nft_is_still_a_sale() -> None:
    event = dict(sale_event(5, "s", 1638352800), nft=None)
    row = normalize_opensea_event(event, "s", NOW)
    assert row["nft_contract"] is None and row["nft_identifier"] is None
    assert row["sale_id"] == sale_id(
        "ethereum", event["transaction"], event["order_hash"], None, None
    )


def test_other_event_types_are_skipped_not_rejected() -> None:
    with pytest.raises(SkipRecord):
        normalize_opensea_event(dict(sale_event(1, "s", 1638352800), event_type="order"), "s", NOW)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"event_type": None}, "event_type missing"),
        ({"payment": "1 ETH"}, "payment missing"),
        ({"transaction": ""}, "transaction missing"),
        ({"chain": 5}, "chain: expected a string"),
        ({"event_timestamp": 10**13}, "event_timestamp"),
        ({"event_timestamp": 1}, "outside 2015..2100"),
        ({"quantity": 0}, "positive count"),
        ({"nft": [1]}, "nft is not an object"),
    ],
)
def test_malformed_events_are_rejected_with_a_reason(change: dict, reason: str) -> None:
    event = {**sale_event(1, "s", 1638352800), **change}
    with pytest.raises(RejectedRecord, match=reason):
        normalize_opensea_event(event, "s", NOW)


def test_conform_refuses_a_forged_id_and_a_negative_price() -> None:
    row = normalize_opensea_event(sale_event(1, "s", 1638352800), "s", NOW)
    with pytest.raises(SaleError, match="not the sale's id"):
        conform_sale({**row, "sale_id": "sale:" + "0" * 32})
    with pytest.raises(SaleError, match="negative"):
        conform_sale({**row, "price": Decimal("-1")})
    assert conform_sale(row) == row


def test_the_fingerprint_ignores_when_a_sale_was_read() -> None:
    row = normalize_opensea_event(sale_event(1, "s", 1638352800), "s", NOW)
    later = {**row, "ingested_at": datetime(2022, 1, 1, tzinfo=UTC)}
    assert fingerprint(row) == fingerprint(later)
    assert fingerprint(row) != fingerprint({**row, "price": Decimal(2), "price_eth": 2.0})


def test_the_arrow_schema_follows_the_fields() -> None:
    schema = sale_arrow_schema()
    assert schema.names == list(SALE_COLUMNS)
    assert str(schema.field("price").type) == "decimal128(38, 18)"
    assert not schema.field("sale_id").nullable and schema.field("buyer").nullable
