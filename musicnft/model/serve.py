"""The SageMaker endpoint: the bring-your-own-container serving contract, on the standard library.

- `GET /ping`: 200 once the model is loaded (503 before; SageMaker waits for the 200).
- `POST /invocations`, `Content-Type: application/json`, body `{"instances": ["text", ...]}` (at
  most `MAX_INSTANCES`): 200 with `{"predictions": [{"score": float in [-1, 1], "label":
  "positive"|"neutral"|"negative"}, ...], "model_version": ...}` in the instances' order. Every bad
  request (wrong content type, malformed JSON, no `instances` list, too many instances, an
  instance that is not a string, a body too large) gets 400 with `{"error": reason}`, never a 500.
- The model comes from `--model-dir` (`/opt/ml/model`, where SageMaker unpacks `model.tar.gz`);
  it is loaded in the background so `/ping` answers from the first moment.

Imports neither scikit-learn nor numpy: the container needs this package and vaderSentiment only.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from musicnft.hotpath.enrich import sentiment_scores
from musicnft.hotpath.sentiment_model import SentimentModel

log = logging.getLogger("musicnft.serve")

MAX_INSTANCES = 1_000
MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker real-time payloads are at most 6 MB (serverless 4)


class BadRequest(ValueError):
    """A request the endpoint refuses with 400; the message is the reason sent back."""


def parse_instances(content_type: str | None, body: bytes) -> list[str]:
    """The request's texts, or BadRequest naming what is wrong."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise BadRequest(f"Content-Type must be application/json, got {content_type or 'none'!r}")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or "instances" not in doc:
        raise BadRequest('body must be a JSON object {"instances": ["text", ...]}')
    instances = doc["instances"]
    if not isinstance(instances, list):
        raise BadRequest('"instances" must be a list of strings')
    if len(instances) > MAX_INSTANCES:
        raise BadRequest(f"at most {MAX_INSTANCES} instances per call, got {len(instances)}")
    for i, text in enumerate(instances):
        if not isinstance(text, str):
            raise BadRequest(f"instances[{i}] is {type(text).__name__}, not a string")
    return instances


def predict(model: SentimentModel, texts: list[str]) -> dict[str, Any]:
    predictions = []
    for text in texts:
        s = sentiment_scores(text)
        assert s is not None  # strings only (parse_instances)
        score, name = model.predict(text, (s["neg"], s["neu"], s["pos"], s["compound"]))
        predictions.append({"score": score, "label": name})
    return {"predictions": predictions, "model_version": model.version}


class ModelServer:
    """The HTTP server and its model, loaded by `loader` in a background thread."""

    def __init__(self, loader: Callable[[], SentimentModel], host: str, port: int) -> None:
        self.model: SentimentModel | None = None
        self.load_error: str | None = None
        self._loader = loader
        self.httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self.httpd.daemon_threads = True

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def load(self) -> None:
        try:
            self.model = self._loader()
            log.info("model %s loaded; /ping answers 200", self.model.version)
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("model could not be loaded: %s", self.load_error)

    def start(self) -> ModelServer:
        """Serve in background threads (tests, benchmarks); `serve_forever` for the command."""
        threading.Thread(target=self.load, name="model-load", daemon=True).start()
        threading.Thread(target=self.httpd.serve_forever, name="model-http", daemon=True).start()
        return self

    def serve_forever(self) -> None:
        threading.Thread(target=self.load, name="model-load", daemon=True).start()
        self.httpd.serve_forever()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler_for(server: ModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle's algorithm on, the body waits for the
        # client's delayed ACK of the headers (about 40 ms on Linux) on every keep-alive request.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.client_address[0], *args)

        def _send(self, status: int, doc: dict[str, Any]) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path != "/ping":
                self._send(404, {"error": f"no such path {self.path}"})
            elif server.model is None:
                reason = server.load_error or "model loading"
                self._send(503, {"status": "not ready", "reason": reason})
            else:
                self._send(200, {"status": "ok", "model_version": server.model.version})

        def do_POST(self) -> None:
            if self.path != "/invocations":
                self._drain()
                self._send(404, {"error": f"no such path {self.path}"})
                return
            try:
                length = int(self.headers.get("Content-Length") or "")
            except ValueError:
                self.close_connection = True
                self._send(400, {"error": "a Content-Length header is required"})
                return
            if length < 0 or length > MAX_BODY_BYTES:
                self.close_connection = True
                self._send(400, {"error": f"body must be at most {MAX_BODY_BYTES} bytes"})
                return
            body = self.rfile.read(length)
            try:
                texts = parse_instances(self.headers.get("Content-Type"), body)
            except BadRequest as exc:
                self._send(400, {"error": str(exc)})
                return
            model = server.model
            if model is None:
                self._send(503, {"error": "model not loaded yet"})
                return
            try:
                answer = predict(model, texts)
            except Exception as exc:  # a scorer bug: say so, keep serving
                log.exception("scoring failed")
                self._send(500, {"error": f"scoring failed: {type(exc).__name__}"})
                return
            self._send(200, answer)

        def _drain(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = 0
            if 0 < length <= MAX_BODY_BYTES:
                self.rfile.read(length)

    return Handler


def main(argv: list[str] | None = None) -> int:
    """The serving container's entry point (`python -m musicnft.model.serve [serve]`): the same
    server as `musicnft model serve`, importing nothing beyond the standard library, this package's
    scorer and vaderSentiment, so the image stays small. SageMaker runs the image with the
    argument `serve`; the port is SAGEMAKER_BIND_TO_PORT (through the settings) or 8080."""
    import argparse
    import signal
    from pathlib import Path

    from musicnft.hotpath.model_artifact import load_model_dir
    from musicnft.logs import setup_logging
    from musicnft.settings import Settings

    settings = Settings.from_env()
    setup_logging(settings.log_level)
    parser = argparse.ArgumentParser(prog="python -m musicnft.model.serve")
    parser.add_argument("command", nargs="?", choices=["serve"], help="SageMaker's argument")
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=settings.sagemaker_bind_port or 8080)
    parser.add_argument("--model-dir", default="/opt/ml/model", help="unpacked model.tar.gz")
    args = parser.parse_args(argv)
    model_dir = Path(args.model_dir)
    server = ModelServer(lambda: load_model_dir(model_dir), args.host, args.port)
    log.info("serving on %s:%d from %s", args.host, server.port, model_dir)

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    server.httpd.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
