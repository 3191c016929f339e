"""The BigQuery fault proxy: faithful pass-through to the emulator, and the faults it injects.

The emulator never reports per-row insert errors, so these tests pin down that the proxy makes the
real google-cloud-bigquery client see what real BigQuery would send: `insertErrors` at the original
row indexes (honouring skipInvalidRows), transient row faults, and a 503 while "down".
"""

from __future__ import annotations

import gzip
import http.client
import itertools
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from musicnft.devtools.bq_emulator import PROJECT, bigquery_emulator
from tests.support.bq_proxy import BigQueryFaultProxy, bigquery_fault_proxy

pytestmark = pytest.mark.slow

DATASET = "proxy_ds"
SCHEMA = [bigquery.SchemaField("id", "STRING"), bigquery.SchemaField("n", "INT64")]
_table_numbers = itertools.count()


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    with bigquery_emulator() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def module_proxy(emulator: str) -> Iterator[BigQueryFaultProxy]:
    with bigquery_fault_proxy(emulator) as proxy:
        yield proxy


@pytest.fixture
def proxy(module_proxy: BigQueryFaultProxy) -> Iterator[BigQueryFaultProxy]:
    """The shared proxy, reset before and after each test so no fault leaks between tests."""
    module_proxy.clear()
    yield module_proxy
    module_proxy.clear()


@pytest.fixture(scope="module")
def client(module_proxy: BigQueryFaultProxy) -> bigquery.Client:
    bq = bigquery.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=module_proxy.endpoint),
    )
    bq.create_dataset(DATASET)  # through the proxy
    return bq


@pytest.fixture
def table(client: bigquery.Client, proxy: BigQueryFaultProxy) -> bigquery.Table:
    """A fresh table per test, created through the proxy."""
    table_id = f"{PROJECT}.{DATASET}.t{next(_table_numbers)}"
    return client.create_table(bigquery.Table(table_id, schema=SCHEMA))


def rows(*ids: str) -> list[dict[str, Any]]:
    return [{"id": i, "n": n} for n, i in enumerate(ids)]


def ids_in(client: bigquery.Client, table: bigquery.Table) -> list[str]:
    sql = f"SELECT id FROM `{table.project}.{table.dataset_id}.{table.table_id}` ORDER BY id"
    return [row["id"] for row in client.query(sql).result()]


def reasons(errors: list[dict[str, Any]]) -> dict[int, str]:
    return {e["index"]: e["errors"][0]["reason"] for e in errors}


def test_pass_through_create_insert_query(
    client: bigquery.Client, proxy: BigQueryFaultProxy, table: bigquery.Table
) -> None:
    # GIVEN a table created through the proxy
    assert client.get_table(table).schema == SCHEMA
    # WHEN rows are inserted and queried through it
    errors = client.insert_rows_json(table, rows("a", "b"), row_ids=["a", "b"])
    # THEN no errors, the rows are there, and the request was recorded as sent
    assert errors == []
    assert ids_in(client, table) == ["a", "b"]
    assert [r["insertId"] for r in proxy.insert_requests[0]["rows"]] == ["a", "b"]
    # AND PATCH / DELETE pass through too
    table.description = "via proxy"
    assert client.update_table(table, ["description"]).description == "via proxy"
    client.delete_table(table)
    with pytest.raises(gexc.NotFound):
        client.get_table(table)


def test_permanent_reject_with_skip_invalid_rows_inserts_the_others(
    client: bigquery.Client, proxy: BigQueryFaultProxy, table: bigquery.Table
) -> None:
    # GIVEN row "b" is permanently bad
    proxy.reject("b")
    # WHEN three rows are inserted with skip_invalid_rows=True
    errors = client.insert_rows_json(
        table, rows("a", "b", "c"), row_ids=["a", "b", "c"], skip_invalid_rows=True
    )
    # THEN "b" is reported at its index with BigQuery's error shape, and the others landed
    assert reasons(errors) == {1: "invalid"}
    assert set(errors[0]["errors"][0]) == {"reason", "location", "debugInfo", "message"}
    assert ids_in(client, table) == ["a", "c"]
    # AND it stays bad on a retry
    again = client.insert_rows_json(table, rows("b"), row_ids=["b"], skip_invalid_rows=True)
    assert reasons(again) == {0: "invalid"}
    assert ids_in(client, table) == ["a", "c"]
    assert len(proxy.insert_requests) == 2


def test_reject_without_skip_invalid_rows_stops_the_whole_request(
    client: bigquery.Client, proxy: BigQueryFaultProxy, table: bigquery.Table
) -> None:
    # GIVEN row "c" is bad
    proxy.reject("c")
    # WHEN inserted with the others and skip_invalid_rows=False
    errors = client.insert_rows_json(
        table, rows("a", "b", "c"), row_ids=["a", "b", "c"], skip_invalid_rows=False
    )
    # THEN nothing landed: "c" is invalid, the others were stopped
    assert reasons(errors) == {0: "stopped", 1: "stopped", 2: "invalid"}
    assert ids_in(client, table) == []


def test_transient_reject_fails_once_then_succeeds_on_retry(
    client: bigquery.Client, proxy: BigQueryFaultProxy, table: bigquery.Table
) -> None:
    # GIVEN row "b" hits a transient backend error on the next request only
    proxy.reject("b", times=1, reason="backendError")
    batch, row_ids = rows("a", "b", "c"), ["a", "b", "c"]
    # WHEN inserted, then the failed rows are retried
    first = client.insert_rows_json(table, batch, row_ids=row_ids, skip_invalid_rows=True)
    failed = [e["index"] for e in first]
    second = client.insert_rows_json(
        table,
        [batch[i] for i in failed],
        row_ids=[row_ids[i] for i in failed],
        skip_invalid_rows=True,
    )
    # THEN the first attempt reported "b" only, the retry went through, every row is there once
    assert reasons(first) == {1: "backendError"}
    assert second == []
    assert ids_in(client, table) == ["a", "b", "c"]


def test_down_answers_503_until_up(
    client: bigquery.Client, proxy: BigQueryFaultProxy, table: bigquery.Table
) -> None:
    # GIVEN the proxy is down
    proxy.down()
    # WHEN the client queries or inserts without retries
    # THEN it gets Google's 503, and nothing reached the emulator
    with pytest.raises(gexc.ServiceUnavailable, match="unavailable"):
        client.query("SELECT 1", retry=None, job_retry=None).result()
    with pytest.raises(gexc.ServiceUnavailable):
        client.insert_rows_json(table, rows("a"), row_ids=["a"], retry=None)
    assert proxy.insert_requests == []
    # AND once up again everything works
    proxy.up()
    assert [tuple(r) for r in client.query("SELECT 1 AS x").result()] == [(1,)]
    assert client.insert_rows_json(table, rows("a"), row_ids=["a"]) == []
    assert ids_in(client, table) == ["a"]


# -- transport fidelity, against a scripted upstream (no emulator needed) -------------------------


class _Scripted(BaseHTTPRequestHandler):
    """Echoes the request back, chunked and gzip-encoded, with a custom status and header."""

    protocol_version = "HTTP/1.1"

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        seen = {
            "method": self.command,
            "path": self.path,
            "body": self.rfile.read(length).decode(),
            "x_test": self.headers.get("X-Test"),
            "host": self.headers.get("Host"),
        }
        payload = gzip.compress(json.dumps(seen).encode())
        self.send_response(207 if self.command != "DELETE" else 204)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", "yes")
        if self.command == "DELETE":
            self.end_headers()
            return
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        half = len(payload) // 2
        for chunk in (payload[:half], payload[half:]):
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _echo

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the fake upstream's access log would only clutter the test output."""


@pytest.fixture
def scripted_upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_transport_is_faithful(scripted_upstream: str, method: str) -> None:
    with bigquery_fault_proxy(scripted_upstream) as proxy:
        port = int(proxy.endpoint.rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = b'{"k": 1}' if method in {"POST", "PUT", "PATCH"} else None
        # Two requests on one keep-alive connection: framing must be exact for the second to work.
        for attempt in range(2):
            connection.request(
                method, f"/some/path?q={attempt}", body=body, headers={"X-Test": "hello"}
            )
            response = connection.getresponse()
            data = response.read()
            assert response.getheader("X-Upstream") == "yes"
            assert response.getheader("Transfer-Encoding") is None
            if method == "DELETE":
                assert (response.status, data) == (204, b"")
                continue
            assert response.status == 207
            assert response.getheader("Content-Encoding") == "gzip"
            assert int(response.getheader("Content-Length") or -1) == len(data)
            seen = json.loads(gzip.decompress(data))
            assert seen["method"] == method
            assert seen["path"] == f"/some/path?q={attempt}"
            assert seen["body"] == (body or b"").decode()
            assert seen["x_test"] == "hello"
            assert seen["host"] == scripted_upstream.removeprefix("http://")
        connection.close()
