"""Airflow glue for promote_model and rollback_model: the verdict recorded in the lake (gates, approval)
and mirrored on the version's tags, the check that the model file is still the one registered, the alias
move with its audit record, and the control message, each returning a small JSON-able dict."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from mlflow import MlflowClient

from ml.alerts import APPROVAL_PENDING, INFO, MODEL_REFUSED, PAGE, PROMOTED, ROLLED_BACK, WARN, Alert
from ml.gates import Gate, failed
from ml.lake import Lake
from ml.lake.layout import audit_prefix, verdict_key
from ml.registry import (
    CHALLENGER, RegistryError, by_alias, champion, model_url, publish_control, rollback_target, run_url,
    set_champion, version_url,
)
from ml.registry.approval import APPROVED, AUTO, BY_GATES, BY_POLICY, REJECTED, decide, request, tag_gates
from ml.registry.digest import Untrusted, read_verdict, verify_artifact
from ml.registry.trust import NotApproved, judge_version, valid_approval
from ml.settings import AlertSettings, load_settings

log = logging.getLogger(__name__)


def check(version: str | None) -> dict:
    """Judge a version (default: the challenger) on its training run and its artifact, record the verdict
    with the model's digest in the lake (`ml.registry.trust`), tag each verdict and the approval state on
    the version for people, and return the evidence a person needs to decide."""
    from airflow.sdk.exceptions import AirflowSkipException

    settings = load_settings()
    client, name = MlflowClient(settings.mlflow_tracking_uri), settings.model_name
    mv = client.get_model_version(name, str(version)) if version else by_alias(client, name, CHALLENGER)
    if mv is None:
        raise AirflowSkipException(f"{name} has no challenger to promote")
    current = champion(client, name)
    if current is not None and current.version == mv.version:
        raise AirflowSkipException(f"{name} v{mv.version} is already the champion")
    lake = Lake.from_settings(settings.lake)
    try:
        verdict = judge_version(settings.mlflow_tracking_uri, lake, name, mv.version, settings.gates,
                                current.version if current else None)
    except RegistryError as exc:  # not a plain model, not the one judged before, or a run that was changed
        verdict = {"gates": [Gate("evidence", False, str(exc)).to_dict()], "decision": REJECTED, "inputs": None,
                   "digest": None}
    gates = [Gate(**g) for g in verdict["gates"]]
    decision = verdict["decision"]
    tag_gates(client, name, mv.version, gates)
    judged = verdict["inputs"] is not None
    if decision == REJECTED:
        decide(client, lake if judged else None, name, mv.version, REJECTED, BY_GATES, AUTO,
               f"failed gates: {', '.join(failed(gates))}")
    elif decision == APPROVED:
        decide(client, lake, name, mv.version, APPROVED, BY_POLICY, AUTO, "every gate passed",
               ttl_hours=settings.gates.approval_ttl_hours)
    elif (verdict.get("approval") or {}).get("decision") == REJECTED:
        decision = REJECTED  # a person, or nobody in time, rejected these bytes: that stands
    elif _approved_now(verdict, settings.gates.approval_ttl_hours):
        decision = APPROVED  # a person approved these bytes, recently enough: no need to ask again
    else:
        request(client, name, mv.version)
    metric = settings.gates.metric
    logged = (verdict["inputs"] or {}).get("metrics", {})
    evidence = {
        "version": mv.version, "champion": current.version if current else None, "decision": decision,
        "policy": settings.gates.approval_policy, "gates": [g.to_dict() for g in gates], "failed": failed(gates),
        "metric": metric, "challenger_value": logged.get(metric), "champion_value": logged.get(f"champion_{metric}"),
        "digest": verdict["digest"], "verdict": lake.url(verdict_key(name, mv.version)) if judged else None,
        "version_url": version_url(settings.mlflow_tracking_uri, mv.name, mv.version),
        "run_url": run_url(settings.mlflow_tracking_uri, client.get_run(mv.run_id).info.experiment_id, mv.run_id)
                   if mv.run_id else None,
        "drift_report": mv.tags.get("drift_report"), "trigger": mv.tags.get("trigger"),
    }
    lines = [f"{'PASS' if g.passed else 'FAIL'} {g.name}: {g.detail}" for g in gates]
    _alert_decision(name, mv.version, decision, evidence, lines, settings.alerts)
    log.info("%s v%s vs champion %s: %s (policy %s)\n%s\nversion: %s", name, mv.version, evidence["champion"],
             decision, settings.gates.approval_policy, "\n".join(lines), evidence["version_url"])
    return evidence


def _approved_now(verdict: dict, ttl_hours: float) -> bool:
    """Whether the verdict holds an approval of its own bytes that has not expired."""
    try:
        valid_approval(verdict, verdict["digest"], ttl_hours, datetime.now(timezone.utc))
    except NotApproved:
        return False
    return True


def _alert_decision(name: str, version: str, decision: str, evidence: dict, lines: list[str],
                    alerts: AlertSettings) -> None:
    """On-call hears of a version that waits for a person, and of one the gates refused."""
    from plugins.notifiers.on_call import notify_on_call

    alert = decision_alert(name, version, decision, evidence, lines)
    if alert is not None:
        notify_on_call(alert, alerts=alerts)


def decision_alert(name: str, version: str, decision: str, evidence: dict, lines: list[str]) -> Alert | None:
    """The alert for a gate decision: none for an approved version; a warning for one that waits for a person
    or that failed a gate other than the metric; for the record (info) when it is only not better than
    the champion, the healthy outcome of a retrain."""
    if decision == APPROVED:
        return None
    if evidence["champion"] is None:
        diff = f"{evidence['metric']} {evidence['challenger_value']}; no champion yet, this would be the first"
    else:
        diff = (f"{evidence['metric']} {evidence['challenger_value']} vs champion v{evidence['champion']} "
                f"{evidence['champion_value']}")
    links = {k: evidence[k] for k in ("version_url", "run_url", "drift_report") if evidence.get(k)}
    if decision == REJECTED:
        not_better = evidence["failed"] == ["metric"] and evidence["champion"] is not None
        title = (f"{name} v{version} kept out: not better than champion v{evidence['champion']}" if not_better
                 else f"{name} v{version} refused by its gates: {', '.join(evidence['failed'])}")
        return Alert(MODEL_REFUSED, title, "\n".join([diff, *lines]), links, subject=name,
                     dedupe_key=f"refused:{name}:{version}", severity=INFO if not_better else WARN)
    return Alert(APPROVAL_PENDING, f"{name} v{version} waits for approval in Airflow",
                 "\n".join([diff, *lines,
                            "An approver (CONTINUUM_APPROVERS) approves or rejects it in Airflow: promote_model, "
                            "task wait_for_approval, Required actions."]),
                 links, subject=name, dedupe_key=f"pending:{name}:{version}")


def move_alert(record: dict, links: dict[str, str], detail: str = "") -> Alert:
    """The alert for an alias move (promotion or rollback), worded from the audit record: the first
    champion reads as such; `detail` (the evidence of an automatic rollback) follows the reason."""
    kind = ROLLED_BACK if record.get("type") == "rollback" else PROMOTED
    model, to = record["model"], record["to"]
    title = (f"{model}: v{to} is the first champion" if record.get("from") is None
             else f"{model}: champion v{record['from']} -> v{to} ({record.get('type', 'promotion')})")
    body = f"by {record.get('actor')}: {record.get('reason')}" + (f"\n{detail}" if detail else "")
    return Alert(kind, title, body, links, subject=model, dedupe_key=f"{kind}:{model}:{to}")


def promote(version: str) -> dict:
    """Make an approved version the champion (one audit record naming who approved it, as the verdict in
    the lake records it, never a tag); a rejected one is skipped, saying who. One whose model file
    changed since registration is refused (`_check_artifact`), and so is one whose approval was given
    for other bytes or has expired (`valid_approval`): the task fails, the champion stays.

    Safe to retry after a failure at any step: a retry finishes the same move and returns its record."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    settings = load_settings()
    client, name = MlflowClient(settings.mlflow_tracking_uri), settings.model_name
    lake = Lake.from_settings(settings.lake)
    verdict = read_verdict(lake, name, str(version))
    given = (verdict or {}).get("approval") or {}
    if given.get("decision") != APPROVED:
        state = f"{given['decision']} by {given['by']}: {given.get('reason', '')}" if given else "not approved"
        raise AirflowSkipException(f"{name} v{version} is {state}")
    digest = _check_artifact(settings, name, str(version), lake)
    try:
        valid_approval(verdict, digest, settings.gates.approval_ttl_hours, datetime.now(timezone.utc))
    except NotApproved as exc:
        log.error("%s v%s not made champion: %s", name, version, exc)
        raise AirflowFailException(f"{name} {exc}") from None
    tags = client.get_model_version(name, str(version)).tags
    metric, who = settings.gates.metric, given["by"]
    why = (f"{tags.get('trigger', '?')}; {metric} {tags.get(metric)} vs champion "
           f"{tags.get(f'champion_{metric}', 'none')}; approved by {who} ({given['how']})")
    record = set_champion(client, name, str(version), who, why, lake, on_move=_log_move(name))
    log.info("champion of %s: v%s -> v%s (%s)", name, record["from"], record["to"], why)
    return record


def _check_artifact(settings, name: str, version: str, lake: Lake) -> str:
    """Refuse to make a version champion unless its model file, downloaded now, has the digest recorded
    when it was registered (returned): on-call is paged with the evidence, the task fails, the champion
    stays."""
    try:
        return verify_artifact(settings.mlflow_tracking_uri, lake, name, version)
    except Untrusted as exc:
        from plugins.notifiers.on_call import notify_on_call

        log.error("%s v%s refused as champion: %s", name, version, exc)
        notify_on_call(artifact_alert(name, version, exc, version_url(settings.mlflow_tracking_uri, name, version)),
                       alerts=settings.alerts)
        raise


def artifact_alert(name: str, version: str, exc: Untrusted, url: str) -> Alert:
    """The page for a version whose model file cannot be verified: expected and found digests and the
    artifact's URI when the file changed; sent once per version and file found."""
    evidence = {**getattr(exc, "evidence", {"version": version}), "version_url": url}
    return Alert(MODEL_REFUSED, f"{name} v{version} not made champion: its model file is not the one registered",
                 f"{exc}. The champion did not move.", evidence, severity=PAGE, subject=name,
                 dedupe_key=f"{MODEL_REFUSED}:{name}:{version}:{evidence.get('found', 'unverified')}")


def _log_move(name: str):
    return lambda alias, version: log.info("%s: alias %s -> v%s", name, alias, version)


def rollback(version: str | None, actor: str, reason: str) -> dict:
    """Move `champion` back to a version (default: `previous`) whose model file is still the one
    registered, with an audit record."""
    settings = load_settings()
    client, name = MlflowClient(settings.mlflow_tracking_uri), settings.model_name
    target, lake = rollback_target(client, name, version), Lake.from_settings(settings.lake)
    _check_artifact(settings, name, target, lake)
    record = set_champion(client, name, target, actor, reason or "rollback", lake, kind="rollback",
                          on_move=_log_move(name))
    log.warning("ROLLBACK of %s: champion v%s -> v%s by %s: %s", name, record["from"], record["to"], actor, reason)
    return record


def announce(record: dict, detail: str = "", evidence: dict[str, str] | None = None) -> dict:
    """Tell every sidecar on the control topic, through the Airflow Kafka connection, and on-call, with
    `detail` and `evidence` (links) when the move has them (an automatic rollback)."""
    from airflow.providers.apache.kafka.hooks.produce import KafkaProducerHook

    settings = load_settings()
    value = publish_control(KafkaProducerHook(settings.kafka_conn_id).get_producer(), settings.topic_control, record)
    log.info("control message on %s: %s", settings.topic_control, value)
    from plugins.notifiers.on_call import notify_on_call

    links = {"registry": model_url(settings.mlflow_tracking_uri, record["model"]),
             "audit": Lake.from_settings(settings.lake).url(audit_prefix()), **(evidence or {})}
    notify_on_call(move_alert(record, links, detail), alerts=settings.alerts)
    return value
