"""A local HTTP server that speaks the OpenSea API v2 calls the sales collector makes, faults and
all: pagination through `next`, 429 with and without `Retry-After`, 5xx, 401/403 (echoing the key
it was sent, as a careless server might), malformed events, the same sale on two pages, events
outside the asked range, collections with no sales, and an unknown collection (404).

`FakeOpenSea.events[slug]` holds a collection's sale events (build them with `sale_event`); the
server answers `after < event_timestamp < before` (or every event with `ignore_range`), oldest
first, `page_size` to a page. `faults` is a queue of answers given instead of the next requests:
`(status, headers, body)`.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

KEY = "os-k3y-never-print-me-0123456789"
ETH = "0x0000000000000000000000000000000000000000"
WEI = 10**18


def sale_event(
    i: int,
    slug: str,
    ts: int,
    wei: int = WEI // 10,
    symbol: str = "ETH",
    decimals: int = 18,
    buyer: str | None = None,
    chain: str = "ethereum",
) -> dict[str, Any]:
    """An OpenSea sale event; `i` makes it unique (transaction, order and token)."""
    return {
        "event_type": "sale",
        "event_timestamp": ts,
        "chain": chain,
        "transaction": f"0x{i:064x}",
        "order_hash": f"0x{i + 7:064x}",
        "protocol_address": "0x00000000000000adc04c56bf30ac9d3c0aaf14dc",
        "closing_date": ts,
        "seller": f"0x{0xAA0000 + i:040x}",
        "buyer": buyer or f"0x{0xBB0000 + i % 5:040x}",
        "quantity": 1,
        "payment": {
            "quantity": str(wei),
            "token_address": ETH,
            "decimals": decimals,
            "symbol": symbol,
        },
        "nft": {
            "identifier": str(i),
            "collection": slug,
            "contract": f"0x{0xC0FFEE:040x}",
            "token_standard": "erc721",
        },
    }


class FakeOpenSea:
    def __init__(self) -> None:
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.page_size = 200
        self.repeat_across_pages = False  # the last event of a page starts the next one too
        self.ignore_range = False  # answer every event, whatever after/before say
        self.auth_status = 401  # what a wrong key gets (401 or 403)
        self.faults: list[tuple[int, dict[str, str], bytes]] = []
        self.requests: list[dict[str, Any]] = []  # path, params, status (never the key)
        self.keys_seen: list[str] = []
        self.top: list[dict[str, Any]] = []
        self.stats: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def _send(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                key = self.headers.get("x-api-key", "")
                with fake._lock:
                    fake.keys_seen.append(key)
                    fault = fake.faults.pop(0) if fake.faults else None
                record = {"path": url.path, "params": params}
                if fault is not None:
                    status, headers, body = fault
                    record["status"] = status
                    fake.requests.append(record)
                    self._send(status, body, headers)
                    return
                if key != KEY:
                    record["status"] = fake.auth_status
                    fake.requests.append(record)
                    # a careless server echoes what it was sent
                    body = {"detail": f"Invalid API key {key!r}", "status": fake.auth_status}
                    self._send(fake.auth_status, json.dumps(body).encode())
                    return
                status, body_obj = fake.answer(url.path, params)
                record["status"] = status
                fake.requests.append(record)
                self._send(status, json.dumps(body_obj).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:4] == ["api", "v2", "events", "collection"] and len(parts) == 5:
            return self._events(parts[4], params)
        if parts == ["api", "v2", "collections", "top"]:
            limit = int(params.get("limit", "50"))
            return 200, {"collections": self.top[:limit], "next": None}
        if parts[:3] == ["api", "v2", "collections"] and len(parts) == 5 and parts[4] == "stats":
            if parts[3] not in self.stats:
                return 404, {"errors": [f"collection {parts[3]} not found"]}
            return 200, self.stats[parts[3]]
        return 404, {"errors": ["not found"]}

    def _events(self, slug: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if slug not in self.events:
            return 404, {"errors": [f"collection {slug} not found"]}
        if params.get("event_type") != "sale":
            return 400, {"errors": ["event_type must be sale here"]}
        after, before = int(params.get("after", "0")), int(params.get("before", str(2**40)))
        limit = min(int(params.get("limit", "50")), self.page_size)
        chosen = [
            e
            for e in self.events[slug]
            if self.ignore_range
            or not isinstance(e, dict)
            or not isinstance(e.get("event_timestamp"), int)
            or after < e["event_timestamp"] < before
        ]
        offset = int(base64.b64decode(params["next"]).decode()) if params.get("next") else 0
        page = chosen[offset : offset + limit]
        end = offset + limit
        if self.repeat_across_pages and end < len(chosen):
            end -= 1  # the next page starts with this page's last event
        more = offset + limit < len(chosen)
        cursor = base64.b64encode(str(end).encode()).decode() if more else None
        return 200, {"asset_events": page, "next": cursor}

    def event_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "/events/" in r["path"]]

    def start(self) -> FakeOpenSea:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def fake_opensea() -> Iterator[FakeOpenSea]:
    fake = FakeOpenSea().start()
    try:
        yield fake
    finally:
        fake.stop()
