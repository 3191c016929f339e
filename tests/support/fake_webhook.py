"""A local Slack-compatible incoming webhook (http.server in a thread) for the spike alerts'
tests: answers POSTs with scripted statuses (then 200) and records every JSON body."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Slack's webhook URLs carry their secret in the path: tests check it never reaches a log.
SECRET_PATH = "/services/T000/B000/SeCrEtToKeN"


class FakeWebhook:
    def __init__(self) -> None:
        self.script: list[int] = []
        self.bodies: list[dict] = []
        self.headers: dict[int, dict[str, str]] = {}
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.bodies.append(json.loads(body))
                status = hook.script.pop(0) if hook.script else 200
                self.send_response(status)
                for k, v in hook.headers.get(status, {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
