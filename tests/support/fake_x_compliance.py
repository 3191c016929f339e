"""A local HTTP server that speaks X API v2 batch compliance (docs/deletions.md), with its faults.

`POST /2/compliance/jobs` → a job with `upload_url` / `download_url` (on this server, as X's
pre-signed storage URLs); `PUT` to the upload URL takes one id a line (a bearer token sent there is
refused: it would leak the token to the storage host); `GET /2/compliance/jobs/{id}` moves the job
along its script (`created` → `in_progress` → `complete` by default, or `failed` / `expired`);
`GET /2/compliance/jobs?type=&status=` lists jobs; the download URL answers JSON lines for the
uploaded ids that `actions` names. A second active job of a type is refused (X allows one).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

TOKEN = "compliance-bearer-token-never-printed"


class FakeCompliance:
    def __init__(self) -> None:
        # kind -> statuses a job goes through on successive polls after its upload
        self.scripts: dict[str, list[str]] = {}
        # X id -> (action, reason) for the results
        self.actions: dict[str, tuple[str, str]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, list[str]] = {}
        self.polls = 0
        self.requests: list[tuple[str, str]] = []
        self._next = 1
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeCompliance:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_active_job(self, kind: str, status: str = "in_progress") -> str:
        """A job someone else started (X allows one active job per type)."""
        with self._lock:
            job = self._new_job(kind, "elsewhere")
            job["status"] = status
            return job["id"]

    def _new_job(self, kind: str, name: str) -> dict[str, Any]:
        job_id = str(1_400_000_000_000_000_000 + self._next)
        self._next += 1
        job = {
            "id": job_id,
            "type": kind,
            "name": name,
            "status": "created",
            "upload_url": f"{self.url}/upload/{job_id}",
            "download_url": f"{self.url}/download/{job_id}",
            "upload_expires_at": "2026-12-01T00:15:00.000Z",
            "download_expires_at": "2026-12-08T00:00:00.000Z",
            "created_at": "2026-12-01T00:00:00.000Z",
        }
        self.jobs[job_id] = job
        return job

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._send(401, {"title": "Unauthorized", "status": 401})
                    return False
                return True

            def do_POST(self) -> None:
                fake.requests.append(("POST", self.path))
                if urlparse(self.path).path != "/2/compliance/jobs":
                    self._send(404, {"title": "Not Found"})
                    return
                if not self._authorized():
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                kind = body.get("type")
                if kind not in ("tweets", "users"):
                    self._send(400, {"title": "Invalid Request", "detail": "type"})
                    return
                with fake._lock:
                    busy = [
                        j
                        for j in fake.jobs.values()
                        if j["type"] == kind and j["status"] in ("created", "in_progress")
                    ]
                    if busy:
                        self._send(409, {"title": "Conflict", "detail": "one job per type"})
                        return
                    job = fake._new_job(kind, body.get("name", ""))
                self._send(200, {"data": dict(job)})

            def do_PUT(self) -> None:
                fake.requests.append(("PUT", self.path))
                job_id = self.path.rsplit("/", 1)[-1]
                if not self.path.startswith("/upload/") or job_id not in fake.jobs:
                    self._send(404, {"title": "Not Found"})
                    return
                if "Authorization" in self.headers:  # the storage host must never see it
                    self._send(400, {"title": "token sent to the upload URL"})
                    return
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                with fake._lock:
                    fake.uploads[job_id] = [x for x in body.splitlines() if x]
                self._send(200, b"", "text/plain")

            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path))
                url = urlparse(self.path)
                if url.path.startswith("/download/"):
                    job = fake.jobs.get(url.path.rsplit("/", 1)[-1])
                    if job is None or job["status"] != "complete":
                        self._send(404, {"title": "Not Found"})
                        return
                    lines = []
                    for x_id in fake.uploads.get(job["id"], []):
                        if x_id in fake.actions:
                            action, reason = fake.actions[x_id]
                            lines.append(
                                json.dumps(
                                    {
                                        "id": x_id,
                                        "action": action,
                                        "created_at": "2026-11-01T00:00:00.000Z",
                                        "redacted_at": "2026-11-30T00:00:00.000Z",
                                        "reason": reason,
                                    }
                                )
                            )
                    self._send(200, ("\n".join(lines) + "\n").encode(), "application/json")
                    return
                if not self._authorized():
                    return
                if url.path == "/2/compliance/jobs":
                    q = parse_qs(url.query)
                    kind, status = q.get("type", [""])[0], q.get("status", [None])[0]
                    jobs = [
                        j
                        for j in fake.jobs.values()
                        if j["type"] == kind and (status is None or j["status"] == status)
                    ]
                    self._send(200, {"data": jobs} if jobs else {"meta": {"result_count": 0}})
                    return
                job_id = url.path.rsplit("/", 1)[-1]
                job = fake.jobs.get(job_id)
                if not url.path.startswith("/2/compliance/jobs/") or job is None:
                    self._send(404, {"title": "Not Found"})
                    return
                with fake._lock:
                    fake.polls += 1
                    script = fake.scripts.setdefault(job["type"], ["in_progress", "complete"])
                    if job_id in fake.uploads and job["status"] in ("created", "in_progress"):
                        job["status"] = script.pop(0) if len(script) > 1 else script[0]
                self._send(200, {"data": job})

        return Handler
