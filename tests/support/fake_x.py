"""A local HTTP server that speaks the X API v2 filtered stream, rules and recent-search protocol,
including its faults: split chunks, keep-alives, stalls, drops, 401/429/503, in-stream errors."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

TOKEN = "s3cr3t-bearer-token-do-not-print"


def tweet(i: int, text: str = "New #NFT music drop on OpenSea") -> dict[str, Any]:
    return {
        "data": {
            "id": str(1466000000000000000 + i),
            "text": f"{text} {i}",
            "created_at": "2021-12-01T00:00:00.000Z",
            "author_id": "42",
            "public_metrics": {
                "retweet_count": 0,
                "reply_count": 0,
                "like_count": 1,
                "quote_count": 0,
            },
        },
        "includes": {
            "users": [{"id": "42", "username": "beats", "public_metrics": {"followers_count": 10}}]
        },
        "matching_rules": [{"id": "1", "tag": "musicnft:nft"}],
    }


def line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\r\n"


class FakeX:
    """Each stream connection plays the next script: a list of steps.

    Steps: ("status", code) | ("chunk", bytes) | ("sleep", seconds) | ("drop",). A connection
    whose script ends closes the response normally. With no scripts left: 503.
    """

    def __init__(self) -> None:
        self.scripts: list[list[tuple]] = []
        self.rules: list[dict[str, str]] = []
        self.recent: list[dict[str, Any]] = []
        self.connects = 0
        self.statuses: list[int] = []
        self._next_rule_id = 1
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def _auth(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._send_json(401, {"title": "Unauthorized", "status": 401})
                    return False
                return True

            def _send_json(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                fake.statuses.append(code)
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path == "/2/tweets/search/stream":
                    fake.connects += 1
                    if not self._auth():
                        return
                    self._stream(fake.scripts.pop(0) if fake.scripts else [("status", 503)])
                elif url.path == "/2/tweets/search/stream/rules":
                    if self._auth():
                        self._send_json(
                            200,
                            {"data": fake.rules} if fake.rules else {"meta": {"result_count": 0}},
                        )
                elif url.path == "/2/tweets/search/recent":
                    if self._auth():
                        since = int(parse_qs(url.query)["since_id"][0])
                        found = [t for t in fake.recent if int(t["data"]["id"]) > since]
                        users = found[0]["includes"]["users"] if found else []
                        self._send_json(
                            200,
                            {
                                "data": [t["data"] for t in found],
                                "includes": {"users": users},
                                "meta": {},
                            },
                        )
                else:
                    self._send_json(404, {"title": "Not Found"})

            def do_POST(self) -> None:
                if not self._auth():
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if "add" in body:
                    for rule in body["add"]:
                        fake.rules.append({"id": str(fake._next_rule_id), **rule})
                        fake._next_rule_id += 1
                if "delete" in body:
                    ids = set(body["delete"]["ids"])
                    fake.rules = [r for r in fake.rules if r["id"] not in ids]
                self._send_json(200, {"meta": {"summary": {}}})

            def _stream(self, script: list[tuple]) -> None:
                if script and script[0][0] == "status":
                    self._send_json(script[0][1], {"title": "error", "status": script[0][1]})
                    return
                fake.statuses.append(200)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for step in script:
                        if step[0] == "chunk":
                            data = step[1]
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                            self.wfile.flush()
                        elif step[0] == "sleep":
                            time.sleep(step[1])
                        elif step[0] == "drop":
                            self.close_connection = True
                            self.connection.shutdown(2)
                            return
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except OSError:
                    return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
