"""`musicnft backfill`'s outcome: a run whose worker died and that Dagster's run_retries retried
with success is recovered, not a failure of the backfill (the chaos run kills run workers); a
failed run with no retry, or whose retry failed too, still fails it."""

from __future__ import annotations

import dagster as dg
from dagster._core.test_utils import create_run_for_test

from musicnft_dagster.backfill import AUTO_RETRY_TAG, outcome

FAILURE, SUCCESS = dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS


def test_a_failed_run_recovered_by_its_retry_does_not_fail_the_backfill() -> None:
    with dg.instance_for_test() as instance:
        # GIVEN a killed run retried once with success, and a failed run never retried
        retry = create_run_for_test(instance, job_name="j", status=SUCCESS)
        killed = create_run_for_test(
            instance, job_name="j", status=FAILURE, tags={AUTO_RETRY_TAG: retry.run_id}
        )
        lone = create_run_for_test(instance, job_name="j", status=FAILURE)
        # WHEN the backfill's outcome is read
        out = outcome(instance, [killed.run_id, retry.run_id, lone.run_id])
        # THEN only the run nothing recovered is a failure
        assert out.failed_runs == [f"{lone.run_id} (FAILURE)"]


def test_a_run_whose_retry_failed_too_fails_the_backfill() -> None:
    with dg.instance_for_test() as instance:
        retry = create_run_for_test(instance, job_name="j", status=FAILURE)
        killed = create_run_for_test(
            instance, job_name="j", status=FAILURE, tags={AUTO_RETRY_TAG: retry.run_id}
        )
        out = outcome(instance, [killed.run_id, retry.run_id])
        assert len(out.failed_runs) == 2
