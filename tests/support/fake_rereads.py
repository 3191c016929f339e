"""Local fakes of the two re-read endpoints (http.server in a thread): Bluesky's AppView
`app.bsky.feed.getPosts` and X's `GET /2/tweets?ids=`. Each knows some posts' counts, leaves the
others out (deleted or not found), records every call's batch, and can answer scripted statuses
(429 with Retry-After) first."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

TOKEN = "test-bearer-token"


class FakeRereadServer:
    def __init__(self) -> None:
        self.bluesky: dict[str, dict[str, int]] = {}  # uri -> counts
        self.x: dict[str, dict[str, int]] = {}  # id -> public_metrics
        self.batches: list[tuple[str, list[str]]] = []  # (endpoint, ids) per answered call
        self.script: list[int] = []  # statuses to answer first (then 200)
        self.unauthorized = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                if server.script:
                    status = server.script.pop(0)
                    self._send(status, {"error": "scripted"}, {"Retry-After": "2"})
                    return
                if url.path == "/xrpc/app.bsky.feed.getPosts":
                    uris = query.get("uris", [])
                    if len(uris) > 25:
                        self._send(400, {"error": "InvalidRequest", "message": "too many uris"})
                        return
                    server.batches.append(("bluesky", uris))
                    posts = [
                        {"uri": u, "cid": "c", **server.bluesky[u]}
                        for u in uris
                        if u in server.bluesky
                    ]
                    self._send(200, {"posts": posts})
                elif url.path == "/2/tweets":
                    if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                        server.unauthorized += 1
                        self._send(401, {"title": "Unauthorized"})
                        return
                    ids = query.get("ids", [""])[0].split(",")
                    assert query.get("tweet.fields") == ["public_metrics"]
                    if len(ids) > 100:
                        self._send(400, {"title": "Invalid Request"})
                        return
                    server.batches.append(("x", ids))
                    body: dict[str, Any] = {
                        "data": [
                            {"id": i, "text": "t", "public_metrics": server.x[i]}
                            for i in ids
                            if i in server.x
                        ]
                    }
                    gone = [i for i in ids if i not in server.x]
                    if gone:
                        body["errors"] = [
                            {"resource_id": i, "title": "Not Found Error", "type": "x"}
                            for i in gone
                        ]
                    self._send(200, body)
                else:
                    self._send(404, {})

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
