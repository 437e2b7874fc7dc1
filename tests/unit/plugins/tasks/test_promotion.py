"""Each promotion alert's level and words: on-call reads them from the data, never 'vNone', and a candidate
that is only not better than the champion is for the record, not a warning; a model file that changed
after registration pages with its evidence."""

from __future__ import annotations

from ml.alerts import APPROVAL_PENDING, INFO, MODEL_REFUSED, PAGE, PROMOTED, ROLLED_BACK, WARN
from ml.registry.digest import DigestMismatch, Untrusted
from plugins.tasks.promotion import artifact_alert, decision_alert, move_alert

LINKS = {"registry": "http://mlflow/#/models/machine-failure", "audit": "file:///lake/registry/audit/"}


def evidence(failed: list[str], champion: str | None = "2") -> dict:
    return {"champion": champion, "metric": "holdout_roc_auc", "challenger_value": "0.9721",
            "champion_value": "0.9702" if champion else None, "failed": failed,
            "version_url": "http://mlflow/#/models/machine-failure/versions/3"}


def test_an_approved_version_sends_nothing():
    assert decision_alert("machine-failure", "3", "approved", evidence([]), []) is None


def test_not_better_than_the_champion_is_for_the_record():
    alert = decision_alert("machine-failure", "3", "rejected", evidence(["metric"]),
                           ["FAIL metric: holdout_roc_auc 0.9721 vs champion v2 0.9702: +0.0019 < margin 0.0020"])
    assert (alert.kind, alert.severity) == (MODEL_REFUSED, INFO)
    assert alert.headline == "[INFO] machine-failure v3 kept out: not better than champion v2"
    assert "holdout_roc_auc 0.9721 vs champion v2 0.9702" in alert.reason


def test_a_failed_validation_latency_or_size_gate_warns_naming_every_failed_gate():
    for failed in (["validation"], ["latency"], ["size"], ["metric", "size"]):
        alert = decision_alert("machine-failure", "3", "rejected", evidence(failed), [])
        assert alert.severity == WARN, failed
        assert alert.title == f"machine-failure v3 refused by its gates: {', '.join(failed)}"


def test_a_first_model_below_the_floor_warns_and_says_there_is_no_champion():
    alert = decision_alert("machine-failure", "1", "rejected", evidence(["metric"], champion=None), [])
    assert alert.severity == WARN and "None" not in alert.summary()
    assert "no champion yet, this would be the first" in alert.reason


def test_a_version_waiting_for_a_person_warns_and_says_how_to_decide():
    alert = decision_alert("machine-failure", "3", "pending", evidence([]), [])
    assert (alert.kind, alert.severity) == (APPROVAL_PENDING, WARN)
    assert alert.title == "machine-failure v3 waits for approval in Airflow"
    assert "An approver (CONTINUUM_APPROVERS) approves or rejects it in Airflow" in alert.reason


def test_moves_read_from_the_audit_record():
    first = move_alert({"type": "promotion", "model": "machine-failure", "from": None, "to": "1", "actor": "policy:auto",
                        "reason": "first model"}, LINKS)
    assert (first.kind, first.severity, first.title) == (PROMOTED, INFO, "machine-failure: v1 is the first champion")
    assert "None" not in first.summary()
    later = move_alert({"type": "promotion", "model": "machine-failure", "from": "1", "to": "2", "actor": "alice",
                        "reason": "better"}, LINKS)
    assert later.title == "machine-failure: champion v1 -> v2 (promotion)" and later.severity == INFO
    back = move_alert({"type": "rollback", "model": "machine-failure", "from": "2", "to": "1", "actor": "bob",
                       "reason": "alerts"}, LINKS)
    assert (back.kind, back.severity, back.title) == (ROLLED_BACK, WARN, "machine-failure: champion v2 -> v1 (rollback)")
    assert back.reason == "by bob: alerts" and back.evidence == LINKS



def test_a_changed_model_file_pages_with_the_evidence_once_per_version_and_file():
    uri, expected, found = "mlflow-artifacts:/1/models/m-1/artifacts", "a" * 64, "b" * 64
    alert = artifact_alert("mf", "3", DigestMismatch("mf", "3", expected, found, uri), "http://mlflow/mf/3")
    assert (alert.kind, alert.severity) == (MODEL_REFUSED, PAGE)
    assert {k: alert.evidence[k] for k in ("version", "expected", "found", "artifact_uri")} == {
        "version": "3", "expected": expected, "found": found, "artifact_uri": uri}
    assert "The champion did not move" in alert.reason
    other = artifact_alert("mf", "3", DigestMismatch("mf", "3", expected, "c" * 64, uri), "")
    assert alert.dedupe_key != other.dedupe_key, "another file is another alert"
    unverified = artifact_alert("mf", "4", Untrusted("mf v4 has no model digest"), "u")
    assert unverified.evidence == {"version": "4", "version_url": "u"} and unverified.dedupe_key.endswith("4:unverified")
