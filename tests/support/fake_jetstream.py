"""A local stand-in for Bluesky's Jetstream: a real websocket server on 127.0.0.1.

It keeps the behaviour the source depends on, so a source that works here works against the real
service: `wantedCollections` filters commits (identity/account events always pass), a client
without `cursor` gets only what is published after it connected (live tail, as Jetstream does),
and `cursor=<time_us>` replays the history from that time_us on (at or after) before going live.
Tests script the awkward parts: connections dropped mid-stream, duplicates, broken frames.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.protocol import State
from websockets.sync.server import Server, ServerConnection, serve

POST = "app.bsky.feed.post"
LIKE = "app.bsky.feed.like"
DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
OTHER_DID = "did:plc:z72i7hdynmk6r22z27h6tvur"


@dataclass(frozen=True)
class Frame:
    """One message as the server holds it. `time_us` orders the history for cursor replays
    (broken frames get one too, as if Jetstream had stamped them)."""

    time_us: int
    payload: bytes
    text: bool = True
    collection: str | None = None  # for commits: what wantedCollections filters on


@dataclass
class ConnectionLog:
    """What one client connection asked for and was sent."""

    path: str
    wanted: list[str]
    cursor: int | None
    sent: list[Frame] = field(default_factory=list)
    dropped: bool = False


class FakeJetstream:
    """Use as a context manager; `url` is the subscribe endpoint.

    `drop_after[i] = n` cuts connection number i (0-based, in connect order) abruptly, without a
    close frame, after it has been sent n frames, which is what a network failure looks like.
    """

    def __init__(self, drop_after: Mapping[int, int] | None = None) -> None:
        self.drop_after = dict(drop_after or {})
        self.history: list[Frame] = []
        self.connections: list[ConnectionLog] = []
        self._cond = threading.Condition()
        self._closing = False
        self._server: Server = serve(self._handle, "127.0.0.1", 0, compression=None)
        self.port: int = self._server.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/subscribe"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def __enter__(self) -> FakeJetstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._server.shutdown()
        self._thread.join(timeout=5)

    # -- scripting ---------------------------------------------------------------------------

    def publish(self, *events: Mapping[str, Any]) -> None:
        """Append events (JSON objects with `time_us`) to the history; live clients get them."""
        for event in events:
            commit = event.get("commit")
            collection = commit.get("collection") if isinstance(commit, Mapping) else None
            payload = json.dumps(event).encode("utf-8")
            self._append(Frame(int(event["time_us"]), payload, True, collection))

    def publish_raw(self, payload: bytes, time_us: int, text: bool = True) -> None:
        """Append a frame sent exactly as given (text frames are not checked for UTF-8)."""
        self._append(Frame(time_us, payload, text, None))

    def _append(self, frame: Frame) -> None:
        with self._cond:
            self.history.append(frame)
            self._cond.notify_all()

    def wait_for_connections(self, n: int, timeout: float = 5.0) -> None:
        wait_until(lambda: len(self.connections) >= n, timeout, f"{n} connection(s)")

    def total_sent(self) -> int:
        with self._cond:
            return sum(len(c.sent) for c in self.connections)

    # -- serving -----------------------------------------------------------------------------

    def _handle(self, conn: ServerConnection) -> None:
        assert conn.request is not None
        path = conn.request.path
        query = parse_qs(urlsplit(path).query)
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        log = ConnectionLog(path, query.get("wantedCollections", []), cursor)
        with self._cond:
            index = len(self.connections)
            self.connections.append(log)
            # Live tail without a cursor; with one, the history from that time on.
            position = len(self.history) if cursor is None else 0
        drop_after = self.drop_after.get(index)
        while True:
            if drop_after is not None and len(log.sent) >= drop_after:
                log.dropped = True
                _abort(conn)
                return
            with self._cond:
                while (
                    position >= len(self.history) and not self._closing and conn.state is State.OPEN
                ):
                    self._cond.wait(0.05)
                if self._closing or conn.state is not State.OPEN:
                    return
                frame = self.history[position]
                position += 1
            if not self._wanted(frame, log):
                continue
            try:
                conn.send(frame.payload, text=frame.text)
            except Exception:  # the client went away
                return
            with self._cond:
                log.sent.append(frame)

    @staticmethod
    def _wanted(frame: Frame, log: ConnectionLog) -> bool:
        if log.cursor is not None and frame.time_us < log.cursor:
            return False
        return not (
            frame.collection is not None and log.wanted and frame.collection not in log.wanted
        )


def _abort(conn: ServerConnection) -> None:
    """Cut the TCP connection without a close frame (frames already sent still arrive)."""
    with contextlib.suppress(OSError):
        conn.socket.shutdown(socket.SHUT_RDWR)


def wait_until(
    predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


# -- events as Jetstream sends them ----------------------------------------------------------


def post_event(
    time_us: int,
    rkey: str,
    text: str,
    *,
    did: str = DID,
    operation: str = "create",
    **record: Any,
) -> dict[str, Any]:
    """A commit of app.bsky.feed.post; `record` adds or overrides record fields."""
    body: dict[str, Any] = {
        "$type": POST,
        "text": text,
        "langs": ["en"],
        "createdAt": "2024-09-09T19:46:02.102Z",
    }
    body.update(record)
    return {
        "did": did,
        "time_us": time_us,
        "kind": "commit",
        "commit": {
            "rev": f"3l3qo2vu{rkey[:6]}",
            "operation": operation,
            "collection": POST,
            "rkey": rkey,
            "record": body,
            "cid": "bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi",
        },
    }


def delete_event(time_us: int, rkey: str, did: str = DID, collection: str = POST) -> dict[str, Any]:
    return {
        "did": did,
        "time_us": time_us,
        "kind": "commit",
        "commit": {
            "rev": "3l3qo2vuowo2b",
            "operation": "delete",
            "collection": collection,
            "rkey": rkey,
        },
    }


def like_event(time_us: int, subject_rkey: str, did: str = OTHER_DID) -> dict[str, Any]:
    return {
        "did": did,
        "time_us": time_us,
        "kind": "commit",
        "commit": {
            "rev": "3l3qo2vuowo2c",
            "operation": "create",
            "collection": LIKE,
            "rkey": "3l3qo2vulike1",
            "record": {
                "$type": LIKE,
                "createdAt": "2024-09-09T19:46:05.000Z",
                "subject": {
                    "cid": "bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi",
                    "uri": f"at://{DID}/{POST}/{subject_rkey}",
                },
            },
            "cid": "bafyreia5w5yzuqpqy2rbmqspnlq6fby6i3arbv4qxsqpdzu6ztwsn6bvfu",
        },
    }


def identity_event(time_us: int, did: str = DID) -> dict[str, Any]:
    return {
        "did": did,
        "time_us": time_us,
        "kind": "identity",
        "identity": {
            "did": did,
            "handle": "artist.bsky.social",
            "seq": 1409752997,
            "time": "2024-09-05T06:11:04.870Z",
        },
    }


def account_event(
    time_us: int, did: str = DID, status: str | None = None, active: bool | None = None
) -> dict[str, Any]:
    """An account status change; with `status` (deleted, takendown, deactivated, suspended)
    the account is inactive unless `active` says otherwise."""
    account: dict[str, Any] = {
        "active": (status is None) if active is None else active,
        "did": did,
        "seq": 1409753013,
        "time": "2024-09-05T06:11:04.870Z",
    }
    if status is not None:
        account["status"] = status
    return {"did": did, "time_us": time_us, "kind": "account", "account": account}


def delete_of(event: Mapping[str, Any], time_us: int) -> dict[str, Any]:
    """The delete Jetstream sends when the author deletes the post that `event` created."""
    commit = event["commit"]
    return delete_event(time_us, commit["rkey"], did=event["did"], collection=commit["collection"])
