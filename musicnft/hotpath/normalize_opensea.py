"""An OpenSea API v2 sale event → a normalized sale (`musicnft.contract.sale`).

OpenSea's event (GET /api/v2/events/collection/{slug}?event_type=sale): `event_type`,
`event_timestamp` (unix seconds), `chain`, `transaction`, `order_hash`, `seller`, `buyer`,
`quantity`, `payment {quantity (a string of base units), token_address, decimals, symbol}` and
`nft {identifier, collection, contract, ...}` (nullable). Price = int(payment.quantity) /
10**payment.decimals in payment.symbol.

An event of another type is skipped (`SkipRecord`: nothing wrong with it, it is not a sale); an
event that cannot be a sale (no transaction, a price that is not a number, a negative price, a
time that is not a time, ...) is rejected with a reason (`RejectedRecord`), for the dead-letter.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from musicnft.contract.sale import (
    SaleError,
    conform_sale,
    price_from_base_units,
    price_in_eth,
    sale_id,
)
from musicnft.hotpath.decode import RejectedRecord, SkipRecord


def _text(event: Mapping[str, Any], name: str) -> str | None:
    value = event.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RejectedRecord(f"{name}: expected a string, got {type(value).__name__}")
    return value.strip() or None


def normalize_opensea_event(
    event: Any, collection: str, ingested_at: datetime, source: str = "opensea"
) -> dict[str, Any]:
    """One OpenSea sale event of `collection` (the slug it was asked for) → a conformed sale row."""
    if not isinstance(event, Mapping):
        raise RejectedRecord(f"event is not an object ({type(event).__name__})")
    kind = event.get("event_type")
    if kind != "sale":
        if isinstance(kind, str) and kind:
            raise SkipRecord(f"event_type {kind[:40]!r} is not a sale")
        raise RejectedRecord("event_type missing")
    payment = event.get("payment")
    if not isinstance(payment, Mapping):
        raise RejectedRecord("payment missing or not an object")
    nft = event.get("nft")
    if nft is not None and not isinstance(nft, Mapping):
        raise RejectedRecord(f"nft is not an object ({type(nft).__name__})")
    nft = nft or {}
    chain = _text(event, "chain")
    transaction = _text(event, "transaction")
    if not chain:
        raise RejectedRecord("chain missing")
    if not transaction:
        raise RejectedRecord("transaction missing")
    order_hash = _text(event, "order_hash")
    contract = _text(nft, "contract")
    identifier = nft.get("identifier")
    if isinstance(identifier, int) and not isinstance(identifier, bool):
        identifier = str(identifier)
    elif identifier is not None and not isinstance(identifier, str):
        raise RejectedRecord(f"nft.identifier: expected a string, got {type(identifier).__name__}")
    quantity = event.get("quantity", 1)
    if quantity is None:
        quantity = 1
    symbol = _text(payment, "symbol")
    try:
        price = price_from_base_units(payment.get("quantity"), payment.get("decimals"))
        row = conform_sale(
            {
                "sale_id": sale_id(chain, transaction, order_hash, contract, identifier),
                "collection": collection,
                "chain": chain,
                "event_timestamp": event.get("event_timestamp"),
                "transaction": transaction,
                "order_hash": order_hash,
                "nft_contract": contract,
                "nft_identifier": identifier,
                "seller": _text(event, "seller"),
                "buyer": _text(event, "buyer"),
                "quantity": quantity,
                "price": price,
                "payment_symbol": symbol,
                "payment_token": _text(payment, "token_address"),
                "price_eth": price_in_eth(price, symbol),
                "source": source,
                "ingested_at": ingested_at,
            }
        )
    except SaleError as exc:
        raise RejectedRecord(str(exc)) from None
    return row
