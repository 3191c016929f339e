"""X API v2 batch compliance: which stored posts and users X says must be deleted or scrubbed.

The protocol (X's documentation; docs/deletions.md): `POST /2/compliance/jobs` with `{"type":
"tweets"|"users", "name": ...}` answers a job with an `upload_url` and a `download_url`; the ids
go up one a line with `PUT` to `upload_url`; `GET /2/compliance/jobs/{id}` is polled until its
`status` is `complete` (or `failed` / `expired`); the results at `download_url` are JSON lines,
each with the `id` and the `action` to take. X allows one concurrent job per type. The base URL
is the X client's (`MUSICNFT_X_API_BASE`), so tests point it at a local fake.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from musicnft.contract.tombstone import Tombstone

log = logging.getLogger("musicnft.compliance")

KINDS = ("tweets", "users")
ACTIVE = ("created", "in_progress")
# X's result actions → ours. Every reason (deleted, protected, suspended, deactivated) of a
# `delete` means the stored content goes; `scrub_geo` means its location data goes.
ACTIONS = {"delete": "delete", "scrub_geo": "scrub_geo"}


class ComplianceError(RuntimeError):
    """A compliance call or job that did not give usable results; the message says which."""


@dataclass
class JobOutcome:
    kind: str
    job_id: str
    uploaded: int
    results: list[dict[str, Any]] = field(default_factory=list)


class ComplianceApi:
    def __init__(
        self,
        api_base: str,
        token: Any,
        session: requests.Session | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.base = api_base.rstrip("/")
        self._token = token  # a Secret (reveal()) or a plain string; never logged
        self.session = session or requests.Session()
        self.timeout = timeout

    def _auth(self) -> dict[str, str]:
        token = self._token.reveal() if hasattr(self._token, "reveal") else str(self._token)
        return {"Authorization": f"Bearer {token}", "User-Agent": "musicnft"}

    def _call(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            resp = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ComplianceError(f"{what}: {type(exc).__name__}") from None
        if resp.status_code >= 400:
            raise ComplianceError(f"{what}: HTTP {resp.status_code} {resp.text[:200]}")
        return resp

    @staticmethod
    def _job(body: Any, what: str) -> dict[str, Any]:
        job = body.get("data", body) if isinstance(body, dict) else None
        if not isinstance(job, dict) or not job.get("id"):
            raise ComplianceError(f"{what}: answer without a job id")
        return job

    def create_job(self, kind: str, name: str) -> dict[str, Any]:
        resp = self._call(
            "POST",
            f"{self.base}/2/compliance/jobs",
            f"create {kind} job",
            headers=self._auth(),
            json={"type": kind, "name": name},
        )
        job = self._job(resp.json(), f"create {kind} job")
        if not job.get("upload_url") or not job.get("download_url"):
            raise ComplianceError(f"create {kind} job: no upload_url / download_url")
        return job

    def get_job(self, job_id: str) -> dict[str, Any]:
        resp = self._call(
            "GET", f"{self.base}/2/compliance/jobs/{job_id}", f"job {job_id}", headers=self._auth()
        )
        return self._job(resp.json(), f"job {job_id}")

    def active_jobs(self, kind: str) -> list[dict[str, Any]]:
        """Jobs of `kind` that are still created or in progress (X allows one per type)."""
        out: list[dict[str, Any]] = []
        for status in ACTIVE:
            resp = self._call(
                "GET",
                f"{self.base}/2/compliance/jobs",
                f"list {kind} jobs",
                headers=self._auth(),
                params={"type": kind, "status": status},
            )
            out += [j for j in resp.json().get("data") or [] if isinstance(j, dict)]
        return out

    def upload(self, upload_url: str, ids: Iterable[str]) -> int:
        """PUT the ids, one a line (a pre-signed URL: no bearer token goes there)."""
        body = "".join(f"{i}\n" for i in ids)
        self._call(
            "PUT",
            upload_url,
            "upload ids",
            data=body.encode(),
            headers={"Content-Type": "text/plain"},
        )
        return body.count("\n")

    def download(self, download_url: str) -> list[dict[str, Any]]:
        resp = self._call("GET", download_url, "download results")
        results = []
        for n, line in enumerate(resp.text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                log.error("compliance results line %d is not JSON; skipped", n)
                continue
            if not isinstance(item, dict) or not item.get("id"):
                log.error("compliance results line %d has no id; skipped", n)
                continue
            results.append(item)
        return results


def run_job(
    api: ComplianceApi,
    kind: str,
    ids: Sequence[str],
    name: str,
    poll_seconds: float = 10.0,
    timeout_seconds: float = 3600.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> JobOutcome:
    """One batch compliance job over `ids` (X's own ids, no prefix): create, upload, poll,
    download. Raises ComplianceError when a job of the type is already running (X allows one),
    or the job fails, expires or outlasts `timeout_seconds`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    busy = api.active_jobs(kind)
    if busy:
        raise ComplianceError(
            f"a {kind} compliance job is already {busy[0].get('status')} (id {busy[0]['id']}); "
            "X allows one at a time per type: try again when it has finished"
        )
    job = api.create_job(kind, name)
    job_id = str(job["id"])
    uploaded = api.upload(job["upload_url"], ids)
    log.info("compliance %s job %s: %d id(s) uploaded", kind, job_id, uploaded)
    deadline = clock() + timeout_seconds
    while True:
        status = str(job.get("status") or "created")
        if status == "complete":
            break
        if status in ("failed", "expired"):
            raise ComplianceError(f"compliance {kind} job {job_id} {status}")
        if clock() >= deadline:
            raise ComplianceError(
                f"compliance {kind} job {job_id} still {status} after {timeout_seconds:.0f} s"
            )
        sleep(poll_seconds)
        job = api.get_job(job_id)
    results = api.download(str(job.get("download_url") or ""))
    log.info("compliance %s job %s: %d result(s)", kind, job_id, len(results))
    return JobOutcome(kind, job_id, uploaded, results)


def tombstones_from(
    kind: str, results: Iterable[dict[str, Any]], learned_at: datetime
) -> tuple[list[Tombstone], list[dict[str, Any]]]:
    """(tombstones, results with an action we do not know) for one job's results: posts
    (`tweets`) become `x:<id>` post tombstones, users author tombstones."""
    tombstones: list[Tombstone] = []
    unknown: list[dict[str, Any]] = []
    for item in results:
        action = ACTIONS.get(str(item.get("action") or ""))
        if action is None:
            log.error(
                "compliance result for %s: unknown action %r", item.get("id"), item.get("action")
            )
            unknown.append(item)
            continue
        raw = str(item["id"])
        if kind == "tweets":
            tombstones.append(Tombstone(f"x:{raw}", None, action, "x_compliance", learned_at))
        else:
            tombstones.append(Tombstone(None, raw, action, "x_compliance", learned_at))
    return tombstones, unknown
