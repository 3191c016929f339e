"""`musicnft backfill` never waits forever for a retry Dagster will not launch: a backfill whose
runs are all over, one of them failed, and nothing has moved for the retry wait is cancelled and
reported (the command exits 1; running it again completes it). Seen in the chaos run: a run worker
SIGKILLed while its run was being launched left the backfill "will be retried" for good."""

from __future__ import annotations

from typing import Any

import pytest

from musicnft_dagster.backfill import BackfillError, BackfillState, follow, stalled


class FakeWebserver:
    """Answers the status query from a script of states (the last one repeats) and records
    cancellations; the clock advances 10 s a poll."""

    def __init__(self, states: list[dict[str, Any]]) -> None:
        self.states = states
        self.polls = 0
        self.cancelled: list[str] = []
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        assert variables is not None
        if "cancelPartitionBackfill" in text:
            self.cancelled.append(variables["id"])
            return {"cancelPartitionBackfill": {"__typename": "CancelBackfillSuccess"}}
        s = self.states[min(self.polls, len(self.states) - 1)]
        self.polls += 1
        self.now += 10.0
        return {
            "partitionBackfillOrError": {
                "__typename": "PartitionBackfill",
                "status": s["status"],
                "numPartitions": 1,
                "error": None,
                "assetBackfillData": {
                    "assetBackfillStatuses": [
                        {
                            "__typename": "AssetPartitionsStatusCounts",
                            "assetKey": {"path": ["reconciliation_15m"]},
                            "numPartitionsTargeted": 1,
                            "numPartitionsInProgress": 0,
                            "numPartitionsMaterialized": s.get("materialized", 0),
                            "numPartitionsFailed": s.get("failed", 0),
                        }
                    ]
                },
                "runs": [{"runId": r, "status": st} for r, st in s["runs"].items()],
            }
        }


def _follow(web: FakeWebserver) -> BackfillState:
    return follow(
        web,  # type: ignore[arg-type]
        "bf1",
        lambda _state: None,
        poll_seconds=0,
        retry_wait_seconds=120,
        clock=web.clock,
    )


def test_a_failed_run_never_retried_cancels_the_backfill_after_the_wait() -> None:
    # GIVEN a backfill whose only run failed at launch, and no retry ever comes
    web = FakeWebserver(
        [
            {"status": "REQUESTED", "runs": {"r1": "QUEUED"}},
            {"status": "REQUESTED", "runs": {"r1": "FAILURE"}, "failed": 1},
        ]
    )
    # WHEN the command follows it THEN, once nothing moved for the wait, it is cancelled and
    # reported with the run that failed
    with pytest.raises(BackfillError, match=r"stalled: run\(s\) r1 failed.*within 120 s"):
        _follow(web)
    assert web.cancelled == ["bf1"]
    assert 120 <= web.now <= 160  # waited the retry wait, not forever, not less


def test_a_retry_that_comes_within_the_wait_is_followed_to_the_end() -> None:
    # GIVEN a failed run whose retry is launched after 60 s and succeeds
    web = FakeWebserver(
        [
            {"status": "REQUESTED", "runs": {"r1": "FAILURE"}, "failed": 1},
            {"status": "REQUESTED", "runs": {"r1": "FAILURE"}, "failed": 1},
            {"status": "REQUESTED", "runs": {"r1": "FAILURE"}, "failed": 1},
            {"status": "REQUESTED", "runs": {"r1": "FAILURE"}, "failed": 1},
            {"status": "REQUESTED", "runs": {"r1": "FAILURE"}, "failed": 1},
            {"status": "REQUESTED", "runs": {"r1": "FAILURE", "r2": "STARTED"}, "failed": 1},
            {"status": "REQUESTED", "runs": {"r1": "FAILURE", "r2": "STARTED"}, "failed": 1},
            {
                "status": "COMPLETED_SUCCESS",
                "runs": {"r1": "FAILURE", "r2": "SUCCESS"},
                "materialized": 1,
            },
        ]
    )
    # THEN the command waits for it and ends with the backfill, nothing cancelled
    final = _follow(web)
    assert final.status == "COMPLETED_SUCCESS"
    assert web.cancelled == []


def test_stalled_means_failed_and_nothing_left_running() -> None:
    def st(status: str, failed: int, runs: dict[str, str]) -> BackfillState:
        return BackfillState(status=status, targeted=1, materialized=0, failed=failed, runs=runs)

    assert stalled(st("REQUESTED", 1, {"r1": "FAILURE"}))
    assert not stalled(st("REQUESTED", 1, {"r1": "FAILURE", "r2": "QUEUED"}))  # the retry
    assert not stalled(st("REQUESTED", 0, {"r1": "SUCCESS"}))  # the next run is due
    assert not stalled(st("REQUESTED", 0, {}))  # nothing launched yet
    assert not stalled(st("COMPLETED_FAILED", 1, {"r1": "FAILURE"}))  # done: reported as such
