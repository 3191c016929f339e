"""The sale contract: one normalized NFT market sale, whichever marketplace reported it.

Like the post contract (`musicnft.contract.schema`), this is the one definition every part derives
from: the sales collector's Parquet files under the lake's `sales/YYYY/MM/DD/HH/`, the window
aggregation that reads them (`musicnft.batch.sales`) and the demo's seeded sample. `conform_sale`
is the single gate that turns a loosely typed dict into a row that fits the schema; a record that
does not fit is rejected with a reason (and dead-lettered by the caller), never stored.

`sale_id` is stable: it is built from what identifies a sale on chain (chain, transaction hash,
order hash, NFT contract and token identifier), never from when or how often it was fetched, so the
same sale read twice (the collector re-reads recent minutes for late and changed events, a page
boundary repeats an event, a rerun fetches a range again) has one id and is counted once.

Prices: `price` is exact (a decimal in the payment token's own unit: base units / 10**decimals);
`price_eth` is the same price as a float when the payment is ETH or WETH (one to one), else null:
sales paid in other tokens count as sales but add nothing to ETH volumes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation, localcontext
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

SALE_SCHEMA_VERSION = 1
SOURCES = ("opensea", "replay")
# Payment symbols whose price is a price in ETH (wrapped ether is ether one to one).
ETH_SYMBOLS = frozenset({"ETH", "WETH"})
# The stored decimal: 38 digits, 18 after the point (ether's own precision); prices whose whole
# part needs more than 20 digits are not a sale of this world and are rejected.
PRICE_PRECISION = 38
PRICE_SCALE = 18
MAX_PRICE = Decimal(10) ** (PRICE_PRECISION - PRICE_SCALE)
MAX_DECIMALS = 36
MAX_STRING_CHARS = 512
MIN_TIMESTAMP = datetime(2015, 7, 30, tzinfo=UTC)  # Ethereum's genesis block
MAX_TIMESTAMP = datetime(2100, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SaleField:
    name: str
    kind: str  # string | int | timestamp | decimal | float
    required: bool
    doc: str


SALE_FIELDS: tuple[SaleField, ...] = (
    SaleField("sale_id", "string", True, "Stable id: hash of chain, tx, order, contract, token"),
    SaleField("collection", "string", True, "Marketplace collection slug, e.g. genesis-tapes"),
    SaleField("chain", "string", True, "Chain the sale settled on, e.g. ethereum"),
    SaleField("event_timestamp", "timestamp", True, "When the sale happened (UTC)"),
    SaleField("transaction", "string", True, "Transaction hash"),
    SaleField("order_hash", "string", False, "Marketplace order hash"),
    SaleField("nft_contract", "string", False, "NFT contract address"),
    SaleField("nft_identifier", "string", False, "Token id within the contract"),
    SaleField("seller", "string", False, "Seller address"),
    SaleField("buyer", "string", False, "Buyer address"),
    SaleField("quantity", "int", True, "Items sold in the sale"),
    SaleField("price", "decimal", True, "Price in the payment token (base units / 10**decimals)"),
    SaleField("payment_symbol", "string", False, "Payment token symbol, e.g. ETH, WETH, USDC"),
    SaleField("payment_token", "string", False, "Payment token address (0x000... for ETH)"),
    SaleField("price_eth", "float", False, "Price in ETH when paid in ETH or WETH, else null"),
    SaleField("source", "string", True, "opensea | replay"),
    SaleField("ingested_at", "timestamp", True, "When the collector read the sale (UTC)"),
)
SALE_COLUMNS: tuple[str, ...] = tuple(f.name for f in SALE_FIELDS)
# Identity fields: an empty value would make different sales the same one.
_NON_EMPTY = frozenset({"sale_id", "collection", "chain", "transaction", "source"})


class SaleError(ValueError):
    """A record does not fit the sale contract; the message names the field."""


def _id_part(value: str | None) -> str:
    """EVM hex (addresses, hashes) is case-insensitive: lower-cased; anything else (a Solana
    address is base58, case matters) is kept as it is."""
    text = (value or "").strip()
    return text.lower() if text[:2].lower() == "0x" else text


def sale_id(
    chain: str,
    transaction: str,
    order_hash: str | None,
    nft_contract: str | None,
    nft_identifier: str | None,
) -> str:
    """The sale's stable id: `sale:` and 32 hex digits of SHA-256 over its on-chain identity.

    The token is part of it because one transaction can settle several sales (a sweep of many
    tokens under one order); the order hash because one transaction can fill several orders."""
    parts = [chain.strip().lower(), *map(_id_part, (transaction, order_hash, nft_contract))]
    parts.append((nft_identifier or "").strip())
    digest = hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()
    return f"sale:{digest[:32]}"


def price_from_base_units(quantity: Any, decimals: Any) -> Decimal:
    """`int(quantity) / 10**decimals`, exactly (quantity is a string of base units, as wallets and
    marketplaces send it to avoid float rounding). Raises SaleError naming the fault."""
    if isinstance(quantity, bool) or not isinstance(quantity, str | int):
        raise SaleError(
            f"payment quantity must be a string of digits, got {type(quantity).__name__}"
        )
    text = str(quantity).strip()
    if text.startswith("-"):
        raise SaleError(f"negative payment quantity {text[:40]!r}")
    if not text.isdigit() or not text.isascii():
        raise SaleError(f"payment quantity is not a whole number of base units: {text[:40]!r}")
    if isinstance(decimals, bool) or not isinstance(decimals, int):
        raise SaleError(f"payment decimals must be an integer, got {decimals!r}"[:120])
    if not 0 <= decimals <= MAX_DECIMALS:
        raise SaleError(f"payment decimals {decimals} outside 0..{MAX_DECIMALS}")
    if len(text) > PRICE_PRECISION + MAX_DECIMALS:
        raise SaleError(f"payment quantity too large ({len(text)} digits)")
    with localcontext() as ctx:
        ctx.prec = 100
        price = Decimal(int(text)).scaleb(-decimals)
    return price


def price_in_eth(price: Decimal, symbol: str | None) -> float | None:
    """The price as ETH when the payment token is ETH or WETH, else None."""
    if symbol is None or symbol.strip().upper() not in ETH_SYMBOLS:
        return None
    return float(price)


def parse_event_time(value: Any) -> datetime:
    """Unix seconds (int or float) or an ISO-8601 string → aware UTC datetime."""
    if isinstance(value, bool):
        raise SaleError("event_timestamp: expected unix seconds, got a boolean")
    try:
        if isinstance(value, int | float):
            dt = datetime.fromtimestamp(value, UTC)
        elif isinstance(value, datetime):
            dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        elif isinstance(value, str) and value.strip():
            text = value.strip()
            if text.replace(".", "", 1).isdigit():
                dt = datetime.fromtimestamp(float(text), UTC)
            else:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
                dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
        else:
            raise SaleError(f"event_timestamp: expected unix seconds, got {value!r}"[:120])
    except (ValueError, OverflowError, OSError):
        raise SaleError(f"event_timestamp: not a time: {str(value)[:40]!r}") from None
    dt = dt.astimezone(UTC)
    if not MIN_TIMESTAMP <= dt < MAX_TIMESTAMP:
        raise SaleError(f"event_timestamp {dt.isoformat()} outside 2015..2100")
    return dt


def _quantized(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise SaleError("field 'price': expected a decimal, got a boolean")
    try:
        price = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise SaleError(f"field 'price': not a number: {str(value)[:40]!r}") from None
    if not price.is_finite():
        raise SaleError("field 'price': not a finite number")
    if price < 0:
        raise SaleError(f"field 'price': negative ({price})")
    if price >= MAX_PRICE:
        raise SaleError(f"field 'price': {price:.4E} out of range")
    with localcontext() as ctx:
        ctx.prec = 100
        return price.quantize(Decimal(1).scaleb(-PRICE_SCALE))


def _conform_value(f: SaleField, value: Any) -> Any:
    if value is None:
        return None
    if f.kind == "string":
        if not isinstance(value, str):
            raise SaleError(f"field {f.name!r}: expected a string, got {type(value).__name__}")
        value = value.strip()
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise SaleError(f"field {f.name!r}: not storable as UTF-8") from None
        if len(value) > MAX_STRING_CHARS:
            raise SaleError(f"field {f.name!r}: too long ({len(value)} chars)")
        if not value:
            if f.name in _NON_EMPTY:
                raise SaleError(f"field {f.name!r}: empty")
            return None
        return value
    if f.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise SaleError(f"field {f.name!r}: expected an integer, got {value!r}"[:120])
        if not 0 < value < 2**63:
            raise SaleError(f"field {f.name!r}: {value} is not a positive count")
        return value
    if f.kind == "timestamp":
        try:
            return parse_event_time(value)
        except SaleError as exc:
            raise SaleError(f"field {f.name!r}: {exc}") from None
    if f.kind == "decimal":
        return _quantized(value)
    if f.kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise SaleError(f"field {f.name!r}: expected a number, got {value!r}"[:120])
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")) or number < 0:
            raise SaleError(f"field {f.name!r}: {number} is not a non-negative number")
        return number
    raise SaleError(f"field {f.name!r}: unknown kind {f.kind}")


def conform_sale(record: Mapping[str, Any]) -> dict[str, Any]:
    """A row with exactly the sale columns: unknown keys ignored, missing optional ones null.

    Raises SaleError for a missing required field, a value of the wrong type, a negative price,
    a source that is not ours or a `sale_id` that does not match the sale's identity."""
    if not isinstance(record, Mapping):
        raise SaleError(f"expected an object, got {type(record).__name__}")
    row: dict[str, Any] = {}
    for f in SALE_FIELDS:
        value = _conform_value(f, record.get(f.name))
        if value is None and f.required:
            raise SaleError(f"missing required field {f.name!r}")
        row[f.name] = value
    if row["source"] not in SOURCES:
        raise SaleError(f"field 'source': {row['source']!r} is not one of {', '.join(SOURCES)}")
    expected = sale_id(
        row["chain"], row["transaction"], row["order_hash"], row["nft_contract"],
        row["nft_identifier"],
    )  # fmt: skip
    if row["sale_id"] != expected:
        raise SaleError(f"field 'sale_id': {row['sale_id']!r} is not the sale's id {expected!r}")
    if row["price_eth"] is None:
        row["price_eth"] = price_in_eth(row["price"], row["payment_symbol"])
    return row


def fingerprint(row: Mapping[str, Any]) -> str:
    """A digest of what a sale says (every column but when it was read): a re-read that finds the
    same sale unchanged has the same fingerprint, a changed one (a reorg, a corrected price) a new
    one."""
    text = "|".join(
        "" if row.get(c) is None else str(row.get(c))
        for c in SALE_COLUMNS
        if c not in ("ingested_at",)
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@cache
def _arrow_types() -> dict[str, pa.DataType]:
    # pyarrow on first use only, as in the post contract.
    import pyarrow as pa

    return {
        "string": pa.string(),
        "int": pa.int64(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "decimal": pa.decimal128(PRICE_PRECISION, PRICE_SCALE),
        "float": pa.float64(),
    }


def sale_arrow_schema() -> pa.Schema:
    """The sales files' Parquet schema (the lake's `sales/`)."""
    import pyarrow as pa

    types = _arrow_types()
    return pa.schema(
        [pa.field(f.name, types[f.kind], nullable=not f.required) for f in SALE_FIELDS],
        metadata={b"musicnft.sale_schema_version": str(SALE_SCHEMA_VERSION).encode()},
    )
