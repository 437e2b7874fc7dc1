"""Faults survived, with traffic flowing: the broker restarted under the sidecar, MLflow stopped during the
swap to a new champion, the S3 endpoint stopped during an offload, an offload killed mid-write, and
the registry's tasks killed half-way and retried. The faults run once, on a stack of their own
(`tests/integration/faults.py`); each test reads what one of them cost."""

from __future__ import annotations

import pytest

from tests.integration.faults import QUICK, run_faults, summary

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def faults(tmp_path_factory) -> dict:
    records = run_faults(QUICK, tmp_path_factory.mktemp("faults"))
    return {r.name: r for r in records}


def test_a_broker_restart_loses_no_event_and_repeats_at_most_the_batches_in_flight(faults):
    fault = faults["kafka_broker_restart"]
    assert fault.detail["acked"] > 0 and fault.detail["failed_deliveries"] == 0, fault
    assert fault.detail["missing"] == [] and fault.lost == 0, fault
    assert fault.duplicates <= fault.detail["duplicate_bound"], fault
    assert fault.detail["changed_scores"] == 0, "a repeat is the same event scored again by the same model"
    assert fault.detail["sidecar_running"] and fault.recovery_s is not None and fault.survived, fault


def test_mlflow_down_during_a_swap_keeps_the_old_model_serving_until_it_is_back(faults):
    fault = faults["mlflow_down_during_swap"]
    assert fault.detail["missing"] == [] and fault.lost == 0, fault
    assert fault.detail["keeper_during_outage"] == "unavailable", "an unreachable registry is no verdict"
    assert fault.detail["pages"] == 0 and fault.detail["new_version_before_back"] is False, fault
    assert fault.detail["keeper_after"] == "2" and fault.recovery_s is not None, "the swap happens once it is back"
    assert fault.survived, fault


def test_a_promotion_killed_after_moving_champion_is_finished_once_by_its_retry(faults):
    fault = faults["promote_model_retried"]
    assert fault.detail["killed"] and fault.detail["alias_moves"] == {"previous": 1, "champion": 1}, fault
    assert fault.detail["served_before_retry"] == "1", "a move the audit trail does not record is not served"
    assert fault.detail["audit_records"] == 1 and (fault.detail["champion"], fault.detail["previous"]) == ("2", "1")
    assert fault.duplicates == 0 and fault.lost == 0 and fault.survived, fault


def test_a_registration_killed_after_the_version_was_made_registers_it_once(faults):
    fault = faults["retrain_model_retried"]
    assert fault.detail["versions_of_run"] == 1 and fault.detail["challenger_moves"] == 1, fault
    assert fault.detail["digest_tagged"] and fault.detail["challenger"] == "1", fault
    assert fault.duplicates == 0 and fault.survived, fault


def test_s3_down_during_an_offload_fails_it_cleanly_and_the_retry_writes_the_hour_once(faults):
    fault = faults["s3_down_during_offload"]
    assert fault.detail["failed_cleanly"] and fault.detail["staged_left"] == 0, fault
    assert (fault.lost, fault.duplicates, fault.detail["extra_ids"]) == (0, 0, 0), fault
    assert fault.partial_files == 0 and fault.detail["strays"] == 0 and fault.survived, fault


def test_an_offload_killed_mid_write_leaves_the_old_hour_whole_and_its_retry_writes_each_event_once(faults):
    fault = faults["offload_killed_mid_write"]
    assert fault.detail["exit"] == -9 and fault.detail["old_hour_at_kill"], fault
    assert fault.detail["strays_at_kill"] > 0, "killed between two files: the first is up, named by no manifest"
    assert (fault.lost, fault.duplicates, fault.detail["extra_ids"]) == (0, 0, 0), fault
    assert fault.partial_files == 0 and fault.detail["strays"] == 0 and fault.detail["staged_left"] == 0, fault
    assert fault.survived, fault


def test_the_summary_counts_every_fault_and_those_survived(faults):
    figures = summary(list(faults.values()))
    assert figures["faults_total"] == 6 and figures["faults_survived"] == 6
    assert all({"name", "lost", "duplicates", "partial_files", "recovery_s"} <= set(f) for f in figures["faults"])
