"""A local HTTP server that speaks the X API v2 filtered stream, rules and recent-search protocol,
including its faults: split chunks, keep-alives, stalls, drops, 401/429/503, in-stream errors."""

from __future__ import annotations

import json
import queue
import threading
import time
from datetime import UTC, datetime
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
    whose script ends closes the response normally. With no scripts left: 503, or, with
    `live = True`, a live stream: every post `publish`ed while the client is connected (and only
    those, as X does), a keep-alive each second otherwise. `publish` also makes the post findable
    by recent search, so what a disconnected client missed can be caught up.
    """

    def __init__(self) -> None:
        self.scripts: list[list[tuple]] = []
        self.rules: list[dict[str, str]] = []
        self.recent: list[dict[str, Any]] = []
        self.connects = 0
        self.statuses: list[int] = []
        self._next_rule_id = 1
        self.live = False
        self.live_connects = 0  # live stream connections accepted so far
        self.published: list[dict[str, Any]] = []
        self._published_at: dict[str, float] = {}
        self._live_clients: list[queue.Queue[bytes]] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
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
                    if fake.scripts:
                        self._stream(fake.scripts.pop(0))
                    elif fake.live:
                        self._live()
                    else:
                        self._stream([("status", 503)])
                elif url.path == "/2/tweets/search/stream/rules":
                    if self._auth():
                        self._send_json(
                            200,
                            {"data": fake.rules} if fake.rules else {"meta": {"result_count": 0}},
                        )
                elif url.path == "/2/tweets/search/recent":
                    if self._auth():
                        query = parse_qs(url.query)
                        with fake._lock:
                            if "since_id" in query:
                                since = int(query["since_id"][0])
                                found = [t for t in fake.recent if int(t["data"]["id"]) > since]
                            else:  # start_time: what was published from then on
                                start = datetime.strptime(
                                    query["start_time"][0], "%Y-%m-%dT%H:%M:%SZ"
                                ).replace(tzinfo=UTC)
                                found = [
                                    t
                                    for t in fake.recent
                                    if fake._published_at.get(t["data"]["id"], 0.0)
                                    >= start.timestamp()
                                ]
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

            def _live(self) -> None:
                # Registered before the 200: once the client sees it, nothing published is missed.
                q: queue.Queue[bytes] = queue.Queue()
                with fake._lock:
                    fake._live_clients.append(q)
                    fake.live_connects += 1
                fake.statuses.append(200)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.flush()
                    while not fake._closing.is_set():
                        try:
                            data = q.get(timeout=1.0)
                        except queue.Empty:
                            data = b"\r\n"  # keep-alive
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        self.wfile.flush()
                except OSError:  # the client went away
                    return
                finally:
                    with fake._lock:
                        fake._live_clients.remove(q)

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

    def publish(self, *posts: dict[str, Any]) -> None:
        """Post now: sent to every live client connected, and findable by recent search."""
        with self._lock:
            for post in posts:
                self.published.append(post)
                self.recent.append(post)
                self._published_at[post["data"]["id"]] = time.time()
                for q in self._live_clients:
                    q.put(line(post))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()
