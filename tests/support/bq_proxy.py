"""A fault-injecting HTTP proxy in front of the BigQuery emulator.

Why this exists: the emulator (bqemulator 1.4.0) never reports per-row insert errors — it accepts
unknown fields silently and crashes on a malformed timestamp — so code that must cope with real
BigQuery's partial failures (`insertErrors` in a 200 answer to `tabledata.insertAll`) and with an
unavailable service (503) cannot be tested against it directly. The proxy forwards everything to the
emulator unchanged, except that a test can:

- `reject(insert_id, ...)`: make insertAll report rows with that insertId as failed, at their
  original index, exactly as real BigQuery would (including `skipInvalidRows` semantics);
- `down()` / `up()`: answer every request with a 503 in Google's error format meanwhile.

Stdlib only (`http.server` + `http.client`), so it adds nothing to the lock.
"""

from __future__ import annotations

import contextlib
import copy
import http.client
import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("tests.bq_proxy")

INSERT_ALL = re.compile(r"^/bigquery/v2/projects/[^/]+/datasets/[^/]+/tables/[^/]+/insertAll$")

# Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection, not the message: never forwarded.
# Content-Length is handled apart: the proxy re-frames every body it sends.
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


def google_error(code: int, status: str, reason: str, message: str) -> bytes:
    """A JSON error body in the shape Google APIs use, so google-api-core maps it to its exception."""
    body = {
        "error": {
            "code": code,
            "message": message,
            "status": status,
            "errors": [{"reason": reason, "message": message, "domain": "global"}],
        }
    }
    return json.dumps(body).encode()


@dataclass
class _Rule:
    """How rows with one insertId are rejected; `remaining` is None for a permanently bad row."""

    reason: str
    remaining: int | None


@dataclass
class _Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class BigQueryFaultProxy:
    """State and controls of a running proxy; every method is safe to call from any thread.

    The request handlers run on the server's threads while the test calls `reject` / `down` from its
    own, so all shared state sits behind one lock.
    """

    def __init__(self, upstream: str, timeout: float = 60.0) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self.upstream = upstream.rstrip("/")
        self._host = parsed.hostname
        self._port = parsed.port or 80
        self._timeout = timeout
        self._lock = threading.Lock()
        self._rules: dict[str, _Rule] = {}
        self._down = False
        self._insert_requests: list[dict[str, Any]] = []
        self.endpoint = ""  # set once the server is bound

    # -- controls -------------------------------------------------------------------------------

    def reject(self, insert_id: str, times: int | None = None, reason: str = "invalid") -> None:
        """Report insertAll rows with `insert_id` as failed instead of forwarding them.

        `times=None` models a permanently bad row (rejected on every request); an integer models a
        transient fault that affects only the next `times` insertAll requests containing the row
        (`reason="backendError"` is what BigQuery reports then), after which it is forwarded.
        """
        if times is not None and times < 1:
            raise ValueError(f"times must be None or >= 1, got {times}")
        with self._lock:
            self._rules[insert_id] = _Rule(reason=reason, remaining=times)

    def clear(self) -> None:
        """Forget all rejections, come back up, and forget the recorded requests."""
        with self._lock:
            self._rules.clear()
            self._down = False
            self._insert_requests.clear()

    def down(self) -> None:
        """Answer every request with 503 UNAVAILABLE until `up()`; nothing reaches the emulator."""
        with self._lock:
            self._down = True

    def up(self) -> None:
        """Resume forwarding after `down()`."""
        with self._lock:
            self._down = False

    @property
    def is_down(self) -> bool:
        with self._lock:
            return self._down

    @property
    def insert_requests(self) -> list[dict[str, Any]]:
        """A snapshot of the parsed insertAll request bodies received (while up), oldest first."""
        with self._lock:
            return copy.deepcopy(self._insert_requests)

    # -- request handling (called on server threads) ---------------------------------------------

    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> _Response:
        """Decide what one client request gets: a 503, a synthesized insertAll answer, or upstream's."""
        if self.is_down:
            message = "The service is currently unavailable (test fault proxy is down)."
            return _json_response(503, google_error(503, "UNAVAILABLE", "backendError", message))
        path = urllib.parse.urlsplit(target).path
        if method == "POST" and INSERT_ALL.match(path):
            return self._insert_all(target, headers, body)
        return self._forward(method, target, headers, body)

    def _insert_all(self, target: str, headers: list[tuple[str, str]], body: bytes) -> _Response:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return self._forward("POST", target, headers, body)  # let the emulator complain
        if not isinstance(request, dict):
            return self._forward("POST", target, headers, body)
        rows: list[Any] = request.get("rows") or []
        rejected = self._take_rejections(request, rows)
        if not rejected:
            return self._forward("POST", target, headers, body)

        if not request.get("skipInvalidRows", False):
            # Real BigQuery inserts nothing when any row is invalid and says why for each row.
            errors = [
                _row_error(i, rejected[i], row) if i in rejected else _stopped(i)
                for i, row in enumerate(rows)
            ]
            return _insert_all_response(errors)

        kept = [i for i in range(len(rows)) if i not in rejected]
        errors = [_row_error(i, reason, rows[i]) for i, reason in rejected.items()]
        if kept:
            forwarded = {**request, "rows": [rows[i] for i in kept]}
            # Ask for an uncompressed answer: we have to read and rewrite it.
            plain = [(k, v) for k, v in headers if k.lower() != "accept-encoding"]
            answer = self._forward("POST", target, plain, json.dumps(forwarded).encode())
            if not 200 <= answer.status < 300:
                return answer
            try:
                upstream = json.loads(answer.body or b"{}")
            except ValueError:
                return answer
            for item in upstream.get("insertErrors") or []:
                # Upstream numbered the forwarded subset; map back to the client's indexes.
                errors.append({**item, "index": kept[int(item.get("index", 0))]})
        return _insert_all_response(sorted(errors, key=lambda e: int(e["index"])))

    def _take_rejections(self, request: dict[str, Any], rows: list[Any]) -> dict[int, str]:
        """Record the request; return {row index: reason} for rejected rows, consuming `times`."""
        rejected: dict[int, str] = {}
        with self._lock:
            self._insert_requests.append(copy.deepcopy(request))
            used: set[str] = set()
            for i, row in enumerate(rows):
                insert_id = row.get("insertId") if isinstance(row, dict) else None
                rule = self._rules.get(insert_id) if isinstance(insert_id, str) else None
                if rule is None or insert_id is None:
                    continue
                rejected[i] = rule.reason
                used.add(insert_id)
            for insert_id in used:  # one use per request, however many rows carry the id
                rule = self._rules[insert_id]
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        del self._rules[insert_id]
        return rejected

    def _forward(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> _Response:
        """Send the request upstream on a fresh connection and read the whole answer.

        A fresh connection per request keeps the threads independent; http.client undoes chunked
        framing, so the body is re-served with a Content-Length. Content-Encoding passes through
        untouched (gzip bytes stay gzip bytes).
        """
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
            return _Response(response.status, kept, data)
        except (OSError, http.client.HTTPException) as exc:
            log.warning("upstream %s %s failed: %s", method, target, exc)
            message = f"Test fault proxy could not reach the emulator: {exc}"
            return _json_response(502, google_error(502, "UNAVAILABLE", "backendError", message))
        finally:
            connection.close()


def _row_error(index: int, reason: str, row: Any) -> dict[str, Any]:
    insert_id = row.get("insertId") if isinstance(row, dict) else None
    return {
        "index": index,
        "errors": [
            {
                "reason": reason,
                "location": "",
                "debugInfo": "",
                "message": f"Row with insertId {insert_id!r} rejected by the test fault proxy.",
            }
        ],
    }


def _stopped(index: int) -> dict[str, Any]:
    return {
        "index": index,
        "errors": [{"reason": "stopped", "location": "", "debugInfo": "", "message": ""}],
    }


def _insert_all_response(errors: list[dict[str, Any]]) -> _Response:
    body: dict[str, Any] = {"kind": "bigquery#tableDataInsertAllResponse"}
    if errors:
        body["insertErrors"] = errors
    return _json_response(200, json.dumps(body).encode())


def _json_response(status: int, body: bytes) -> _Response:
    return _Response(status, [("Content-Type", "application/json; charset=UTF-8")], body)


class _Handler(BaseHTTPRequestHandler):
    """Reads one request, asks the proxy what to answer, writes it with an exact Content-Length."""

    protocol_version = "HTTP/1.1"  # keep-alive with the client, as the google client expects
    server: _Server

    def _serve(self) -> None:
        body = self._read_body()
        answer = self.server.proxy.handle(self.command, self.path, list(self.headers.items()), body)
        self.send_response(answer.status)
        if self.command == "HEAD":  # no body: upstream's headers, Content-Length included, as-is
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
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, proxy: BigQueryFaultProxy) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.proxy = proxy


@contextlib.contextmanager
def bigquery_fault_proxy(upstream: str) -> Iterator[BigQueryFaultProxy]:
    """Run a fault proxy for `upstream` on a free loopback port; yield it; stop it after."""
    proxy = BigQueryFaultProxy(upstream)
    server = _Server(proxy)
    host, port = server.server_address[:2]
    proxy.endpoint = f"http://{host}:{port}"
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="bq-fault-proxy",
        daemon=True,
    )
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
