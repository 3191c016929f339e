"""An HTTP proxy that injects a cloud's faults in front of moto server or the BigQuery emulator.

Why this exists: the chaos run's cloud profile (`devtools.chaos --profile cloud`) must show the
pipeline surviving a Kinesis outage, Kinesis throttling and a BigQuery outage, and neither moto nor
the emulator ever fails by itself. The proxy forwards every request unchanged, except that, for the
requests its `matches` predicate selects (e.g. only Kinesis calls on moto's shared endpoint):

- while `down()`: every such request gets a 503 in the service's error format, nothing reaches
  upstream (an outage, as clients see one);
- with `throttle(share)`: that share of them gets the service's throttling error (Kinesis: 400
  `ProvisionedThroughputExceededException`), except PutRecords, where that share of the records
  is refused inside a 200 answer (`FailedRecordCount`), as Kinesis does, and never written.

Stdlib only (`http.server` + `http.client`); moto does not check request signatures, so the Host
header is rewritten to the upstream's. A twin of tests/support/bq_proxy.py's forwarding (dev tools
never import the tests), without its per-row insert rejections.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

Headers = list[tuple[str, str]]


@dataclass
class Response:
    status: int
    headers: Headers
    body: bytes


def _header(headers: Headers, name: str) -> str:
    return next((v for k, v in headers if k.lower() == name), "")


def kinesis_request(_method: str, _path: str, headers: Headers) -> bool:
    """A Kinesis API call (JSON protocol: `X-Amz-Target: Kinesis_20131202.<Operation>`)."""
    return _header(headers, "x-amz-target").startswith("Kinesis_")


def any_request(_method: str, _path: str, _headers: Headers) -> bool:
    return True


def kinesis_unavailable() -> Response:
    body = {"__type": "ServiceUnavailable", "message": "Service Unavailable (chaos fault proxy)"}
    return Response(
        503, [("Content-Type", "application/x-amz-json-1.1")], json.dumps(body).encode()
    )


def kinesis_throttled() -> Response:
    body = {
        "__type": "ProvisionedThroughputExceededException",
        "message": "Rate exceeded for shard (chaos fault proxy)",
    }
    return Response(
        400, [("Content-Type", "application/x-amz-json-1.1")], json.dumps(body).encode()
    )


def google_unavailable() -> Response:
    message = "The service is currently unavailable (chaos fault proxy)."
    body = {
        "error": {
            "code": 503,
            "message": message,
            "status": "UNAVAILABLE",
            "errors": [{"reason": "backendError", "message": message, "domain": "global"}],
        }
    }
    return Response(
        503, [("Content-Type", "application/json; charset=UTF-8")], json.dumps(body).encode()
    )


class FaultProxy:
    """A running proxy: `endpoint` to give clients; `down`/`up`/`throttle` from any thread."""

    def __init__(
        self,
        upstream: str,
        matches: Callable[[str, str, Headers], bool] = any_request,
        unavailable: Callable[[], Response] = google_unavailable,
        throttled: Callable[[], Response] = kinesis_throttled,
        seed: int = 0,
        timeout: float = 60.0,
    ) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self._host, self._port = parsed.hostname, parsed.port or 80
        self._matches, self._unavailable, self._throttled = matches, unavailable, throttled
        self._timeout = timeout
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._down = False
        self._share = 0.0
        self.refused = 0  # requests answered with an outage error
        self.throttled = 0  # requests answered with a throttling error
        self._server = _Server(self)
        host, port = self._server.server_address[:2]
        self.endpoint = f"http://{host!s}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def down(self) -> None:
        with self._lock:
            self._down = True

    def up(self) -> None:
        with self._lock:
            self._down = False

    def throttle(self, share: float) -> None:
        with self._lock:
            self._share = share

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(self, method: str, target: str, headers: Headers, body: bytes) -> Response:
        if self._matches(method, target, headers):
            with self._lock:
                if self._down:
                    self.refused += 1
                    return self._unavailable()
                share = self._share
                put_records = _header(headers, "x-amz-target").endswith(".PutRecords")
                if share and not put_records and self._rng.random() < share:
                    self.throttled += 1
                    return self._throttled()
            if share and put_records:
                return self._put_records(target, headers, body, share)
        return self._forward(method, target, headers, body)

    def _put_records(self, target: str, headers: Headers, body: bytes, share: float) -> Response:
        """Kinesis throttles PutRecords record by record: a 200 whose `FailedRecordCount` counts
        records answered `ProvisionedThroughputExceededException` (never written), which the
        caller must put again. Only the others are forwarded."""
        try:
            request = json.loads(body)
            records = list(request["Records"])
        except (ValueError, KeyError, TypeError):
            return self._forward("POST", target, headers, body)
        with self._lock:
            failed = {i for i in range(len(records)) if self._rng.random() < share}
            self.throttled += len(failed)
        kept = [r for i, r in enumerate(records) if i not in failed]
        results: list[dict[str, Any]] = []
        if kept:
            answer = self._forward(
                "POST", target, headers, json.dumps({**request, "Records": kept}).encode()
            )
            if answer.status != 200:
                return answer
            results = list(json.loads(answer.body).get("Records", []))
        merged: list[dict[str, Any]] = []
        for i in range(len(records)):
            if i in failed:
                merged.append(
                    {
                        "ErrorCode": "ProvisionedThroughputExceededException",
                        "ErrorMessage": "Rate exceeded for shard (chaos fault proxy)",
                    }
                )
            else:
                merged.append(results.pop(0))
        count = sum(1 for r in merged if "ErrorCode" in r)
        out = {"FailedRecordCount": count, "Records": merged}
        return Response(
            200, [("Content-Type", "application/x-amz-json-1.1")], json.dumps(out).encode()
        )

    def _forward(self, method: str, target: str, headers: Headers, body: bytes) -> Response:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP | {"host", "content-length"}:
                    connection.putheader(name, value)
            connection.putheader("Host", f"{self._host}:{self._port}")
            if body or method in {"POST", "PUT", "PATCH"}:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            return Response(response.status, kept, data)
        except (OSError, http.client.HTTPException):
            return self._unavailable()
        finally:
            connection.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _serve(self) -> None:
        body = self._read_body()
        answer = self.server.proxy.handle(self.command, self.path, list(self.headers.items()), body)
        self.send_response(answer.status)
        if self.command == "HEAD":
            for name, value in answer.headers:
                self.send_header(name, value)
            self.end_headers()
            return
        for name, value in answer.headers:
            if name.lower() != "content-length":
                self.send_header(name, value)
        bodiless = answer.status < 200 or answer.status in (204, 304)
        if not bodiless:
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if not bodiless:
            self.wfile.write(answer.body)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one stderr line per proxied request would drown the chaos run's own output


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, proxy: FaultProxy) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.proxy = proxy
