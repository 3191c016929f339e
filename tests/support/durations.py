"""Roughly how long the suite's slowest tests take (seconds, measured under `make test`'s parallel
workers on 2 cores), for scheduling only: tests/conftest.py starts the longest work first so that
no long test starts late and trails the run. A test missing here counts as `DEFAULT_SECONDS`;
a stale figure only makes the order a little worse, never a test wrong.

Keys are node ids, or a node id without its `[parameter]` (then each parameter takes that long).
"""

from __future__ import annotations

DEFAULT_SECONDS = 0.5

SECONDS: dict[str, float] = {
    "tests/batch/test_backfill.py::test_backfill_is_a_dagster_backfill_of_every_window_with_posts": 68,
    "tests/batch/test_backfill.py::test_backfill_exits_non_zero_when_a_check_fails": 5,
    "tests/batch/test_backfill.py::test_backfill_range_includes_empty_windows": 15,
    "tests/batch/test_window_chunks.py::test_a_chunk_of_windows_writes_exactly_what_one_window_at_a_time_writes": 20,
    "tests/devtools/test_cloud_rehearsal.py::test_cloud_profile_end_to_end": 60,
    "tests/app/test_chaos.py::test_a_replay_survives_sigkills_of_every_stage_without_losing_or_doubling_a_post": 138,
    "tests/app/test_chaos.py::test_the_cloud_profile_loses_and_doubles_nothing_through_outages_and_throttling": 145,
    "tests/dagster/test_dagster_ui.py::test_the_ui_shows_materialized_day_partitions_with_checks": 76,
    "tests/dagster/test_dagster_dev.py::test_demo_with_dagster_materializes_every_window_with_posts": 53,
    "tests/dagster/test_dagster_dev.py::test_dagster_dev_serves_the_code_location": 20,
    "tests/app/test_crash_safety.py::test_kill_9_at_every_statement_of_a_warehouse_write_loses_and_doubles_nothing": 20,
    "tests/app/test_crash_safety.py::test_kill_9_at_every_statement_of_a_warehouse_write_loses_and_doubles_nothing[maintain]": 91,
    "tests/app/test_crash_safety.py::test_kill_9_after_random_delays_keeps_every_batch_whole_and_single": 35,
    "tests/app/test_crash_safety.py::test_kill_9_delivery_and_consumer_mid_run_loses_nothing": 34,
    "tests/app/test_run_shutdown.py::test_no_process_outlives_run_with_dagster": 42,
    "tests/spark/test_kill_restart.py::test_a_kill_mid_batch_then_a_restart_writes_every_post_exactly_once": 80,
    "tests/hotpath/test_enrichment_parity.py::test_100k_generated_posts_score_exactly_as_vader_3_3_2": 55,
    "tests/spark/test_score_job.py::test_scores_equal_the_in_process_scores_and_each_post_is_written_once": 53,
    "tests/app/test_run_supervision.py::test_every_stage_and_the_drain_processes_killed_during_a_replay_still_exit_0_complete": 51,
    "tests/app/test_run_supervision.py::test_a_stage_hung_while_draining_is_stopped_and_started_again_with_once": 15,
    "tests/spark/test_spark_package.py::test_the_packaged_entry_script_scores_a_lake_with_only_the_package": 46,
    "tests/spark/test_scored_posts_asset.py::test_local_materialization_scores_every_post_once": 46,
    "tests/spark/test_scored_posts_asset.py::test_emr_entry_script_reports_the_real_job_through_pipes": 45,
    "tests/app/test_deletions_end_to_end.py::test_forget_before_during_and_after": 43,
    "tests/spark/test_spark_package.py::test_dist_spark_holds_the_entry_script_code_zip_libraries_and_manifest": 36,
    "tests/devtools/test_cloud_rehearsal_sales.py::test_the_sales_sample_reaches_s3_and_nft_sales_15m_on_bigquery": 36,
    "tests/spark/test_spark_cli.py::test_the_cli_streams_until_sigterm_then_stops_cleanly": 33,
    "tests/adapters/test_embedded_warehouse.py::test_windowed_writes_and_compaction_never_show_a_window_twice": 31,
    "tests/lambda_bundle/test_lambda_zip.py::test_bundle_is_small_and_imports_in_a_clean_interpreter": 30,
    "tests/lambda_bundle/test_lambda_zip.py::test_bundle_carries_binary_wheels_for_the_chosen_runtime": 27,
    "tests/adapters/test_embedded_warehouse.py::test_concurrent_writer_and_readers_never_fail_or_double_count": 25,
    "tests/hotpath/test_vader_fast.py::test_word_salads_score_as_vader": 24,
}


def estimate(nodeid: str) -> float:
    """A test's expected seconds (its own figure, else its unparametrized name's, else default)."""
    if nodeid in SECONDS:
        return SECONDS[nodeid]
    return SECONDS.get(nodeid.split("[", 1)[0], DEFAULT_SECONDS)
