"""A local HTTP server speaking the SageMaker runtime API's InvokeEndpoint
(`POST /endpoints/<name>/invocations`), with the faults the consumer must survive: a slow
answer (timeout), 5xx errors and malformed bodies. boto3's `sagemaker-runtime` client talks to it
through `endpoint_url`."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from musicnft.hotpath.sentiment_model import SentimentModel
from musicnft.model.serve import predict


class FakeSageMaker:
    """`mode`: "ok" (the model's predictions), "slow" (answers after `delay` s), "error" (500),
    "throttle" (a 429 ThrottlingException) or "malformed" (200 with a body out of contract)."""

    def __init__(self, model: SentimentModel, endpoint: str = "musicnft-sentiment") -> None:
        self.model = model
        self.endpoint = endpoint
        self.mode = "ok"
        self.delay = 1.0
        self.calls: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.calls.append(
                    {
                        "path": self.path,
                        "content_type": self.headers.get("Content-Type"),
                        "body": json.loads(body),
                    }
                )
                if self.path != f"/endpoints/{fake.endpoint}/invocations":
                    return self._send(404, {"message": "Endpoint not found"}, "ValidationError")
                if fake.mode == "slow":
                    time.sleep(fake.delay)
                if fake.mode == "error":
                    return self._send(500, {"message": "boom"}, "InternalFailure")
                if fake.mode == "throttle":
                    return self._send(429, {"message": "slow down"}, "ThrottlingException")
                if fake.mode == "malformed":
                    return self._send(200, {"predictions": [{"score": 7}]})
                texts = json.loads(body)["instances"]
                return self._send(200, predict(fake.model, texts))

            def _send(self, status: int, doc: Any, error: str | None = None) -> None:
                data = json.dumps(doc).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    if error:
                        self.send_header("x-amzn-ErrorType", error)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeSageMaker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
