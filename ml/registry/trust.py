"""Which registered versions may serve: gate verdicts bound to the model's digest, recorded in the lake.

    digest = log_gate_inputs("3", "valid", booster)                       # at training, in the active run
    record = judge_version(tracking_uri, lake, name, "7", gates, "3")     # promotion: gates on the run
    record_approval(lake, name, "7", APPROVED, BY_POLICY, AUTO, "every gate passed")  # via approval.decide
    approval = valid_approval(record, digest_now, ttl_hours=24, now=now)   # promotion: approved, these bytes, in time
    model, record = load_trusted(tracking_uri, lake, name, "7")           # sidecar, batch, retrain, monitor

Version tags can be edited by anyone who can reach the registry, so no tag lets a version through
(the digest tag is only compared with the run's and the verdict's: `ml.registry.digest`). The gates
judge what the training run logged (params are immutable; of a metric only the values logged before
the run ended count) and the registered artifact itself (its size and SHA-256).
The verdict goes to the lake (`ml.lake.layout.verdict_key`), written once: a later
judgement of the same bytes returns it, one of other bytes is refused. The approval (who, when, how)
is added to it when the version is approved or rejected (`ml.registry.approval`, which owns the states
and their transitions), bound to the digest judged; a version may serve only if its verdict
passed, it is approved, and the file just downloaded has the digest recorded at registration and judged.
Promotion asks more of the approval (`valid_approval`): given for the very bytes it promotes, and
recent enough (`CONTINUUM_APPROVAL_TTL_HOURS`), so an approval left unused does not promote later.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

from mlflow import MlflowClient

from ml.gates import GateInputs, bake_gate, check_gates
from ml.lake import Lake
from ml.lake.layout import rolled_back_key, verdict_key
from ml.registry.artifact import FetchedModel, fetch_model
from ml.registry.digest import DIGEST_TAG, Untrusted, check_digest, read_verdict
from ml.registry.states import APPROVED, REJECTED, initial_state
from ml.settings import GateSettings

CHAMPION_PARAM, VALIDATION_PARAM, DIGEST_PARAM = "champion_version", "validation", DIGEST_TAG
NO_CHAMPION = "none"
ALWAYS_READ = ("holdout_roc_auc", "latency_ms_per_1k")  # beside the promotion metric and the champion's


def log_gate_inputs(champion_version: str | None, validation: str, booster) -> str:
    """Log, as params of the active MLflow run, the gate inputs that are not metrics: the champion the
    holdout comparison was made against, the training data's validation status and the SHA-256 of the
    model file it trains (UBJ, the bytes `mlflow.xgboost.log_model` writes). Returns that digest."""
    import mlflow

    digest = hashlib.sha256(bytes(booster.save_raw("ubj"))).hexdigest()
    mlflow.log_params({CHAMPION_PARAM: champion_version or NO_CHAMPION, VALIDATION_PARAM: validation,
                       DIGEST_PARAM: digest})
    return digest


def run_metrics(client: MlflowClient, run_id: str, keys: list[str]) -> dict[str, float]:
    """The value of each metric as the run left it: only values logged before the run ended count, and a
    metric with two different such values is refused (the gate metrics are logged once)."""
    run = client.get_run(run_id)
    end = run.info.end_time
    if run.info.status != "FINISHED" or end is None:
        raise Untrusted(f"training run {run_id} is {run.info.status}, not finished: its metrics can still change")
    out = {}
    for key in keys:
        values = {m.value for m in client.get_metric_history(run_id, key) if m.timestamp <= end}
        if len(values) > 1:
            raise Untrusted(f"training run {run_id} logged {len(values)} different values of {key} before it "
                            "ended; the gate metrics are logged once, so the run was changed: retrain")
        if values:
            out[key] = values.pop()
    return out


def gate_inputs(client: MlflowClient, model: FetchedModel, metric: str) -> GateInputs:
    """The gates' evidence for a fetched version: its training run's params and metrics, its file's size
    and digest; `metric` is the one the metric gate compares."""
    if not model.run_id:
        raise Untrusted(f"{model.name} v{model.version} names no training run; register it from a run")
    params = client.get_run(model.run_id).data.params
    metrics = run_metrics(client, model.run_id, sorted({metric, f"champion_{metric}", *ALWAYS_READ}))
    champion = params.get(CHAMPION_PARAM, NO_CHAMPION)
    return GateInputs(metrics=metrics, champion_version=None if champion == NO_CHAMPION else champion,
                      validation=params.get(VALIDATION_PARAM, ""), trained_digest=params.get(DIGEST_PARAM),
                      model_bytes=model.size, digest=model.digest)


def rolled_back(lake: Lake, name: str, digest: str | None) -> dict | None:
    """The mark of the model file with this digest, or None when it was never rolled back after a bake."""
    if not digest:
        return None
    key = rolled_back_key(name, digest)
    return json.loads(lake.read_text(key)) if lake.exists(key) else None


def with_mark(record: dict, mark: dict | None) -> dict:
    """A verdict as the bake gate leaves it: unchanged without a mark; failed and rejected with one."""
    if not mark:
        return record
    gates = [g for g in record.get("gates", []) if g.get("name") != "bake"] + [bake_gate(mark).to_dict()]
    return {**record, "gates": gates, "passed": False, "decision": REJECTED, "rolled_back": mark}


def judge_version(tracking_uri: str, lake: Lake, name: str, version: str | int, gates: GateSettings,
                  champion_version: str | None) -> dict:
    """Run the gates (limits and approval policy: `gates`) on a version against the champion of now and
    record the verdict (once per version); returns the record. A version judged before is not judged
    again: the same bytes get the recorded verdict back, other bytes are refused (register them as a new
    version). A model file rolled back after its bake window fails the `bake` gate, under any version."""
    model = fetch_model(tracking_uri, name, version)
    existing = read_verdict(lake, name, model.version)
    mark = rolled_back(lake, name, model.digest)  # a model rolled back after its bake fails the bake gate
    if existing is not None:
        if existing["digest"] != model.digest:
            raise Untrusted(f"{name} v{model.version} was judged on sha256 {existing['digest']}, but its artifact "
                            f"is now sha256 {model.digest}: register the new model as a new version")
        return with_mark(existing, mark)
    client = MlflowClient(tracking_uri)
    inputs = gate_inputs(client, model, gates.metric)
    verdicts = check_gates(inputs, champion_version, gates) + ([bake_gate(mark)] if mark else [])
    record = {"model": name, "version": model.version, "run_id": model.run_id, "digest": model.digest,
              "champion": champion_version, "policy": gates.approval_policy,
              "decision": initial_state(verdicts, gates.approval_policy),
              "passed": all(g.passed for g in verdicts),
              "gates": [g.to_dict() for g in verdicts], "inputs": inputs.to_dict(), "judged_at": _now(),
              "approval": None}
    lake.write_text(verdict_key(name, model.version), json.dumps(record, indent=1, sort_keys=True))
    return record


class NotApproved(Untrusted):
    """A version's approval does not let it be promoted now; the message says why and what to do."""


def record_approval(lake: Lake, name: str, version: str | int, decision: str, actor: str, how: str,
                    reason: str, ttl_hours: float | None = None) -> dict:
    """Add the approval (approved or rejected; by whom, when, `auto` or `manual`, why) to a version's
    verdict, bound to the digest that verdict judged; a failed verdict cannot be approved. The same
    decision by the same actor again keeps the first one, with its time (a retried task), unless that
    approval is older than `ttl_hours`: then it is given anew."""
    record = read_verdict(lake, name, version)
    if record is None:
        raise Untrusted(f"{name} v{version} has no verdict in {lake.url(verdict_key(name, version))}: run "
                        "promote_model on it before approving")
    if decision == APPROVED and not record["passed"]:
        raise Untrusted(f"{name} v{version} failed its gates ({', '.join(_failed(record))}) and cannot be approved")
    current = record.get("approval") or {}
    if current.get("decision") == decision and current.get("by") == actor and \
            (ttl_hours is None or not _expired(current, ttl_hours, datetime.now(timezone.utc))):
        return record
    record["approval"] = {"decision": decision, "by": actor, "how": how, "reason": reason, "at": _now(),
                          "digest": record["digest"]}
    lake.write_text(verdict_key(name, version), json.dumps(record, indent=1, sort_keys=True))
    return record


def valid_approval(record: dict | None, digest: str, ttl_hours: float, now: datetime) -> dict:
    """The approval in a version's verdict (`record`) if it lets the version be promoted at `now`: an
    approval for exactly the bytes `digest` (measured on the model file just downloaded), given less
    than `ttl_hours` ago; NotApproved saying which of those fails otherwise."""
    version = (record or {}).get("version", "?")
    given = (record or {}).get("approval") or {}
    if given.get("decision") != APPROVED:
        state = f"{given['decision']} by {given['by']}" if given else "no decision recorded"
        raise NotApproved(f"v{version} is not approved ({state})")
    if given.get("digest") != digest:
        raise NotApproved(f"v{version} was approved for a model file with sha256 {given.get('digest')}, but its file "
                          f"is sha256 {digest}: an approval holds for the bytes approved only; register the model "
                          "as a new version and have it approved")
    if _expired(given, ttl_hours, now):
        raise NotApproved(f"v{version}'s approval by {given['by']} at {given['at']} expired after {ttl_hours:g} h "
                          f"(CONTINUUM_APPROVAL_TTL_HOURS): run promote_model on v{version} again to have it "
                          "approved again")
    return given


def _expired(approval: dict, ttl_hours: float, now: datetime) -> bool:
    """Whether an approval given at `approval['at']` is `ttl_hours` old or older at `now`."""
    return now >= datetime.fromisoformat(approval["at"]) + timedelta(hours=ttl_hours)


def verify(client: MlflowClient, lake: Lake, name: str, version: str | int, digest: str, approved: bool = True,
           artifact_uri: str = "") -> dict:
    """The version's verdict if it may serve: recorded, passed, approved (unless `approved` is false: a
    shadow's scores act on nothing, so a challenger waiting for a person may be shadowed), and for exactly
    the bytes recorded at registration (`ml.registry.digest`); Untrusted saying which of those fails
    otherwise (DigestMismatch, with the evidence, for other bytes)."""
    record = read_verdict(lake, name, version)
    if record is None:
        raise Untrusted(f"v{version} has no recorded verdict ({lake.url(verdict_key(name, version))}): only a "
                        "version judged and approved by promote_model may serve")
    if not record["passed"]:
        raise Untrusted(f"v{version} failed its gates ({', '.join(_failed(record))}) when judged at "
                        f"{record['judged_at']}")
    given = record.get("approval") or {}
    if approved and given.get("decision") != APPROVED:
        state = f"{given['decision']} by {given['by']}" if given else "waiting for approval"
        raise Untrusted(f"v{version} passed its gates but is not approved ({state})")
    check_digest(client, lake, name, version, digest, artifact_uri)
    return record


def load_trusted(tracking_uri: str, lake: Lake, name: str, version: str | int,
                 approved: bool = True) -> tuple[FetchedModel, dict]:
    """Fetch a version through the one loader and verify it before its bytes are parsed; returns the
    model and its verdict, Untrusted or ArtifactRefused (both RegistryError) with the reason otherwise."""
    found: dict = {}
    client = MlflowClient(tracking_uri)

    def check(digest: str, mv, artifact_uri: str) -> None:
        found["record"] = verify(client, lake, name, mv.version, digest, approved, artifact_uri)

    model = fetch_model(tracking_uri, name, version, check=check)
    return model, found["record"]


def _failed(record: dict) -> list[str]:
    return [g["name"] for g in record["gates"] if not g["passed"]]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
